package conversation_test

import (
	"fmt"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/webhooks"
)

// A webhook body parsed by internal/webhooks, turned into a Reply and matched against a
// campaign's on_reply rules.
func ExampleMatch() {
	d, err := campaigns.Parse("promo.yaml", []byte(`
id: promo
template: {name: spring_promo, language: en_US}
audience: {file: audience.csv}
on_reply:
  - name: interested
    button: "Yes, show me"
    message: {text: "Here it is"}
  - keyword: [price, "how much"]
    message: {text: "From $9"}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, body := range []string{
		`{"sender": {"id": "+15550000001"}, "buttonResponse": {"text": "Yes, show me", "id": "b1"}}`,
		`{"sender": {"id": "+15550000002"}, "message": {"text": "How much is it?"}}`,
		`{"sender": {"id": "+15550000003"}, "message": {"text": "thanks"}}`,
	} {
		ev, err := webhooks.Parse([]byte(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		rule, ok := conversation.Match(d.OnReply.Rules, conversation.ReplyOf(*ev.Inbound))
		if !ok {
			fmt.Println("no rule")
			continue
		}
		fmt.Println(rule.ID())
	}
	// Output:
	// interested
	// r2
	// no rule
}
