package connectly

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrTemplateNotListed is wrapped by TemplateButtons when get/templates does not list the
// template in the language asked for.
var ErrTemplateNotListed = errors.New("template not listed")

// ErrTemplateComponentsUnknown is wrapped by TemplateButtons when the listing gives the
// template without Meta's components, so its buttons cannot be known.
var ErrTemplateComponentsUnknown = errors.New("the listing has no components for the template")

// templateButtonsAnswer is the part of the get/templates answer (reference 7) that holds the
// buttons: Meta's raw components, where a BUTTONS component lists each button with its type
// and text (Meta's format; the reference shows the buttons array, not its items).
type templateButtonsAnswer struct {
	Entity struct {
		TemplateGroups []struct {
			Name      string `json:"name"`
			Templates []struct {
				Language struct {
					Code string `json:"code"`
				} `json:"language"`
				ExternalTemplate *struct {
					WhatsApp struct {
						Components []struct {
							Type    string `json:"type"`
							Buttons []struct {
								Type string `json:"type"`
								Text string `json:"text"`
							} `json:"buttons"`
						} `json:"components"`
					} `json:"whatsapp"`
				} `json:"externalTemplate"`
			} `json:"templates"`
		} `json:"templateGroups"`
	} `json:"entity"`
}

// TemplateButtons returns the texts of the quick-reply buttons of a template translation, in
// order, from POST .../get/templates: what on_reply rules may name. It returns an error
// wrapping ErrTemplateNotListed when the listing lacks the translation,
// ErrTemplateComponentsUnknown when it gives no components for it, or the request's error.
func (c *Client) TemplateButtons(ctx context.Context, name, language string) ([]string, error) {
	var a templateButtonsAnswer
	if err := c.post(ctx, "/v1/businesses/"+url.PathEscape(c.businessID)+"/get/templates", []byte("{}"), &a); err != nil {
		return nil, err
	}
	for _, g := range a.Entity.TemplateGroups {
		if g.Name != name {
			continue
		}
		for _, t := range g.Templates {
			if t.Language.Code != language {
				continue
			}
			if t.ExternalTemplate == nil {
				return nil, fmt.Errorf("connectly: template %s (%s): %w", name, language, ErrTemplateComponentsUnknown)
			}
			out := []string{}
			for _, comp := range t.ExternalTemplate.WhatsApp.Components {
				for _, b := range comp.Buttons {
					if strings.EqualFold(b.Type, "QUICK_REPLY") && b.Text != "" {
						out = append(out, b.Text)
					}
				}
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("connectly: template %s (%s): %w", name, language, ErrTemplateNotListed)
}
