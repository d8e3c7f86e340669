package connectly

import (
	"context"
	"net/url"
	"regexp"
	"sort"
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

// CheckTemplate returns CompareTemplate's problems: what makes sends of the translation fail.
func CheckTemplate(t TemplateInfo, params []string) []string {
	problems, _ := CompareTemplate(t, params)
	return problems
}

// CompareTemplate compares what a campaign sends (its parameter names) with a listed template
// translation. Problems make sends fail: the translation must be approved by Connectly and,
// where the listing says, by Meta (a template Meta paused or disabled for low quality is
// approved in Connectly's status only); the campaign's body_N must be exactly body_1..body_N
// for the body's {{1}}..{{N}} (the reference, section 7: body variables are sequential), and
// it gives at most one header parameter (a template has one header), of the header's format.
// Warnings say what sends may fail on, where the reference does not say (see below).
func CompareTemplate(t TemplateInfo, params []string) (problems, warnings []string) {
	if t.Status != "APPROVED" {
		problems = append(problems, "status is "+t.Status+", not APPROVED")
	} else if t.MetaStatus != "" && t.MetaStatus != "APPROVED" {
		problems = append(problems, "Meta's status is "+t.MetaStatus+" (externalTemplate.whatsapp.status), not APPROVED: "+
			"a paused or disabled template's sends fail (Meta 132015, 132016)")
	}
	if !t.Known {
		return problems, warnings
	}
	given := map[int]bool{}
	var headers []string
	for _, p := range params {
		switch {
		case strings.HasPrefix(p, "body_"):
			if n, err := strconv.Atoi(strings.TrimPrefix(p, "body_")); err == nil {
				given[n] = true
			}
		case strings.HasPrefix(p, "header_"):
			headers = append(headers, p)
		}
	}
	var missing, extra []string
	for n := 1; n <= t.BodyVariables; n++ {
		if !given[n] {
			missing = append(missing, "body_"+strconv.Itoa(n))
		}
	}
	for n := range given {
		if n < 1 || n > t.BodyVariables {
			extra = append(extra, "body_"+strconv.Itoa(n))
		}
	}
	sort.Slice(extra, func(i, j int) bool {
		return len(extra[i]) < len(extra[j]) || len(extra[i]) == len(extra[j]) && extra[i] < extra[j]
	})
	if len(missing) > 0 || len(extra) > 0 {
		msg := "the body has " + strconv.Itoa(t.BodyVariables) + " variables"
		if t.BodyVariables > 0 {
			msg += " ({{1}}.." + "{{" + strconv.Itoa(t.BodyVariables) + "}})"
		}
		msg += ", the campaign gives " + strconv.Itoa(len(given))
		if len(missing) > 0 {
			msg += "; missing " + strings.Join(missing, ", ")
		}
		if len(extra) > 0 {
			msg += "; not in the body: " + strings.Join(extra, ", ")
		}
		problems = append(problems, msg)
	}
	sort.Strings(headers)
	if len(headers) > 1 {
		problems = append(problems, "the campaign gives "+strings.Join(headers, " and ")+": a template has one header, which takes one parameter")
		return problems, warnings
	}
	header := ""
	if len(headers) == 1 {
		header = strings.ToUpper(strings.TrimPrefix(headers[0], "header_"))
	}
	switch {
	case header == t.HeaderFormat:
	case header == "" && mediaHeader(t.HeaderFormat):
		// A media header given no value. The reference does not say whether a send may leave
		// out the media of a template with an IMAGE, VIDEO or DOCUMENT header (section 2.2
		// lists the header_* parameters, not when one is required; section 7 gives a media
		// header an example URL at creation): Connectly may send the example, or refuse the
		// send. A warning, then, not a problem: this is the one place that choice is made.
		warnings = append(warnings, "the header is "+t.HeaderFormat+" and the campaign gives no header_"+
			strings.ToLower(t.HeaderFormat)+": Connectly may refuse the sends (the API reference does not say whether the media may be left out)")
	default:
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
	return problems, warnings
}

// mediaHeader reports whether a header format takes a media URL.
func mediaHeader(format string) bool {
	return format == "IMAGE" || format == "VIDEO" || format == "DOCUMENT"
}
