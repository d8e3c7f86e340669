package serve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
)

// ErrorTable builds the configured table of Connectly's codes (config key errors). Its
// overrides are checked as loading the config checks them (config.CheckErrors), so a config
// that loaded builds its table; a problem is a *config.Error naming the code (errors.CODE).
func ErrorTable(c config.Config) (*connectly.Table, error) {
	if err := config.CheckErrors(c.Errors); err != nil {
		return nil, err
	}
	table, err := connectly.NewTable(c.Errors)
	if err != nil {
		return nil, &config.Error{Key: "errors", Msg: err.Error(), Err: err}
	}
	return table, nil
}

// ConnectlyClient is the one way Herald builds a client of the Connectly business config c
// names, which must have an id and an API key: base URL, API key, the request timeout
// (connectly.timeout) and the session recipient field from the config, with up to maxConns
// connections (0: the client's default).
func ConnectlyClient(c config.Config, maxConns int) (*connectly.Client, error) {
	if err := c.RequireConnectly(); err != nil {
		return nil, err
	}
	return connectly.NewClient(connectly.ClientConfig{BaseURL: c.Connectly.BaseURL, BusinessID: c.Connectly.BusinessID,
		APIKey: c.APIKey, Timeout: c.Connectly.Timeout.D(), SessionBSUIDField: c.Connectly.SessionBSUIDField,
		SendCampaignName: c.Connectly.SendCampaignName, MaxConns: maxConns})
}

// onReplyCheckGrace is how much longer than one request (connectly.timeout) checking a
// campaign's on_reply rules against its templates may take in all.
const onReplyCheckGrace = 5 * time.Second

// CheckOnReply checks a campaign's on_reply rules beyond their syntax
// (conversation.CheckOnReply), asking the provider's get/templates for the template's
// quick-reply buttons when config c can reach it (notes say when it cannot).
func CheckOnReply(ctx context.Context, c config.Config, def *campaigns.Definition) (errs, notes []string) {
	ctx, cancel := context.WithTimeout(ctx, c.Connectly.Timeout.D()+onReplyCheckGrace)
	defer cancel()
	return conversation.CheckOnReply(ctx, def, func() (conversation.TemplateButtons, error) {
		if err := c.RequireConnectly(); err != nil {
			return nil, errors.New("no Connectly business id or API key configured")
		}
		client, err := ConnectlyClient(c, 1)
		if err != nil {
			return nil, err
		}
		return client.TemplateButtons, nil
	})
}

// RefuseOnReply is CheckOnReply as the one refusal campaign send, submit and run and the
// scheduler's ticks give: nil when def has no on_reply rules or they have no problem, else an
// error that names the file and lists each problem as campaign validate reports it. The notes
// say what could not be checked (the provider out of reach: the check then lets it go).
func RefuseOnReply(ctx context.Context, c config.Config, def *campaigns.Definition) (notes []string, err error) {
	if len(def.OnReply.Rules) == 0 {
		return nil, nil
	}
	errs, notes := CheckOnReply(ctx, c, def)
	if len(errs) > 0 {
		err = fmt.Errorf("%s: on_reply has %s (as campaign validate reports them):\n%s",
			def.Path, Count(len(errs), "problem", "problems"), strings.Join(errs, "\n"))
	}
	return notes, err
}
