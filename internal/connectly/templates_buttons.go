package connectly

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrTemplateNotListed is wrapped by TemplateButtons when get/templates does not list the
// template in the language asked for.
var ErrTemplateNotListed = errors.New("template not listed")

// ErrNoTemplatesListed is wrapped by TemplateButtons when get/templates lists no template at
// all: the business has none yet, or (a local fake that takes every template) keeps no
// catalogue. Nothing can be said of one template's buttons then, so callers treat it as a
// listing they could not read, not as a template that is missing.
var ErrNoTemplatesListed = errors.New("the listing holds no templates")

// ErrTemplateComponentsUnknown is wrapped by TemplateButtons when the listing gives the
// template without Meta's components, so its buttons cannot be known.
var ErrTemplateComponentsUnknown = errors.New("the listing has no components for the template")

// TemplateButtons returns the texts of the quick-reply buttons of a template translation, in
// order, from POST .../get/templates: what on_reply rules may name. A business with several
// WhatsApp numbers may list the translation once per number (its channel, which names Meta's
// phone id, not the number a campaign sends from), so the buttons of every listing of it are
// returned, each text once. It returns an error wrapping ErrTemplateNotListed when the listing
// lacks the translation, ErrTemplateComponentsUnknown when it gives no components for it, or
// the request's error.
func (c *Client) TemplateButtons(ctx context.Context, name, language string) ([]string, error) {
	a, err := c.templates(ctx)
	if err != nil {
		return nil, err
	}
	if len(a.Entity.TemplateGroups) == 0 {
		return nil, fmt.Errorf("connectly: template %s (%s): %w", name, language, ErrNoTemplatesListed)
	}
	listed, known := false, false
	out := []string{}
	for _, g := range a.Entity.TemplateGroups {
		if g.Name != name {
			continue
		}
		for _, t := range g.Templates {
			if t.Language.Code != language {
				continue
			}
			listed = true
			if t.ExternalTemplate == nil {
				continue
			}
			known = true
			for _, comp := range t.ExternalTemplate.WhatsApp.Components {
				for _, b := range comp.Buttons {
					if strings.EqualFold(b.Type, "QUICK_REPLY") && b.Text != "" && !slices.Contains(out, b.Text) {
						out = append(out, b.Text)
					}
				}
			}
		}
	}
	switch {
	case !listed:
		return nil, fmt.Errorf("connectly: template %s (%s): %w", name, language, ErrTemplateNotListed)
	case !known:
		return nil, fmt.Errorf("connectly: template %s (%s): %w", name, language, ErrTemplateComponentsUnknown)
	}
	return out, nil
}
