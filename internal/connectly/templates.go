package connectly

import (
	"context"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// TemplateInfo is one template translation as listed by get/templates.
type TemplateInfo struct {
	Name     string
	Language string
	// Status is the listing's status without its prefix: APPROVED, PENDING, REJECTED, ...
	Status string
	// MetaStatus is Meta's own status of the translation (externalTemplate.whatsapp.status):
	// APPROVED, or PAUSED and DISABLED for a template Meta stopped for low quality, which
	// Connectly's status does not show (reference 7, inferred; 9: Meta 132015, 132016); "" when
	// the listing carried none.
	MetaStatus string
	// HeaderFormat is the header that takes a parameter: TEXT (with a variable), IMAGE, VIDEO,
	// DOCUMENT, or "" (none), from Meta's components; Known is false when the listing carried no
	// components.
	HeaderFormat string
	// BodyVariables is the highest {{n}} in the body.
	BodyVariables int
	Known         bool
}

// templatesAnswer is the get/templates answer (reference 7): each group's translations with
// Meta's raw components, where a BUTTONS component lists each button with its type and text
// (Meta's format; the reference shows the buttons array, not its items).
type templatesAnswer struct {
	Entity struct {
		TemplateGroups []struct {
			Name      string `json:"name"`
			Templates []struct {
				Language struct {
					Code string `json:"code"`
				} `json:"language"`
				Status           string `json:"status"`
				ExternalTemplate *struct {
					WhatsApp struct {
						Status     string `json:"status"`
						Components []struct {
							Type    string `json:"type"`
							Format  string `json:"format"`
							Text    string `json:"text"`
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

var bodyVarRE = regexp.MustCompile(`\{\{\s*(\d+)\s*\}\}`)

// templates fetches the get/templates answer.
func (c *Client) templates(ctx context.Context) (templatesAnswer, error) {
	var a templatesAnswer
	err := c.post(ctx, "/v1/businesses/"+url.PathEscape(c.businessID)+"/get/templates", []byte("{}"), &a)
	return a, err
}

// ListTemplates lists the business's templates (POST .../get/templates, reference section 7).
func (c *Client) ListTemplates(ctx context.Context) ([]TemplateInfo, error) {
	a, err := c.templates(ctx)
	if err != nil {
		return nil, err
	}
	var out []TemplateInfo
	for _, g := range a.Entity.TemplateGroups {
		for _, t := range g.Templates {
			ti := TemplateInfo{Name: g.Name, Language: t.Language.Code, Status: strings.TrimPrefix(t.Status, "MESSAGE_TEMPLATE_STATUS_")}
			if t.ExternalTemplate != nil {
				ti.Known = true
				ti.MetaStatus = strings.ToUpper(t.ExternalTemplate.WhatsApp.Status)
				for _, comp := range t.ExternalTemplate.WhatsApp.Components {
					switch strings.ToUpper(comp.Type) {
					case "HEADER":
						// A text header needs a parameter only when it has a variable.
						if f := strings.ToUpper(comp.Format); f != "TEXT" || bodyVarRE.MatchString(comp.Text) {
							ti.HeaderFormat = f
						}
					case "BODY":
						for _, m := range bodyVarRE.FindAllStringSubmatch(comp.Text, -1) {
							if n, _ := strconv.Atoi(m[1]); n > ti.BodyVariables {
								ti.BodyVariables = n
							}
						}
					}
				}
			}
			out = append(out, ti)
		}
	}
	return out, nil
}

// CheckTemplate compares what a campaign sends with a listed template translation: it must
// be approved by Connectly and, where the listing says, by Meta (a template Meta paused or
// disabled for low quality is approved in Connectly's status only), its body must have as many
// variables as body_1..body_N given, and its header format must match the header parameter.
// It returns the problems found.
func CheckTemplate(t TemplateInfo, params []string) []string {
	var problems []string
	if t.Status != "APPROVED" {
		problems = append(problems, "status is "+t.Status+", not APPROVED")
	} else if t.MetaStatus != "" && t.MetaStatus != "APPROVED" {
		problems = append(problems, "Meta's status is "+t.MetaStatus+" (externalTemplate.whatsapp.status), not APPROVED: "+
			"a paused or disabled template's sends fail (Meta 132015, 132016)")
	}
	if !t.Known {
		return problems
	}
	bodies, header := 0, ""
	for _, p := range params {
		switch {
		case strings.HasPrefix(p, "body_"):
			bodies++
		case strings.HasPrefix(p, "header_"):
			header = strings.ToUpper(strings.TrimPrefix(p, "header_"))
		}
	}
	if bodies != t.BodyVariables {
		problems = append(problems, "the body has "+strconv.Itoa(t.BodyVariables)+" variables, the campaign gives "+strconv.Itoa(bodies))
	}
	if header != t.HeaderFormat {
		want := t.HeaderFormat
		if want == "" {
			want = "no header variable"
		}
		got := header
		if got == "" {
			got = "none"
		}
		problems = append(problems, "the header is "+want+", the campaign gives "+got)
	}
	return problems
}
