package main

import (
	"context"
	"errors"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
)

// checkOnReply checks a campaign's on_reply rules beyond their syntax
// (conversation.CheckOnReply), asking the provider's get/templates for the template's
// quick-reply buttons when config c can reach it (notes say when it cannot).
func checkOnReply(c config.Config, def *campaigns.Definition) (errs, notes []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return conversation.CheckOnReply(ctx, def, func() (conversation.TemplateButtons, error) {
		if err := c.RequireConnectly(); err != nil || c.APIKey == "" {
			return nil, errors.New("no Connectly business id or API key configured")
		}
		cc := clientConfig(c)
		cc.Timeout, cc.MaxConns = 10*time.Second, 1
		client, err := connectly.NewClient(cc)
		if err != nil {
			return nil, err
		}
		return client.TemplateButtons, nil
	})
}
