package campaigns_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// columnsCampaign is a campaign whose follow-ups read audience columns in every way a
// template can name one, besides the reply's own fields.
const columnsCampaign = `id: promo
template: {name: promo, language: en_US}
audience: {file: a.csv}
on_reply:
  - button: "Yes"
    message:
      text: "Thanks {{ .first_name | title }}, you said {{ .reply }}"
      reply_buttons:
        footer: "{{ with .city }}{{ . }}{{ end }} {{ index . \"coupon code\" }}"
        buttons: [{id: a, text: "{{ $.tier | default \"x\" }}"}]
  - button: "No"
    template: {name: later}
    parameters: {body_1: "{{ .first_name | default \"there\" }}", body_2: "{{ .button }}"}
  - any: true
    none: true
`

func TestOnReplyColumns(t *testing.T) {
	t.Parallel()

	t.Run("ListsTheColumnsRead", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Parse("c.yaml", []byte(columnsCampaign))
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "columns", []string{"city", "coupon code", "first_name", "tier"}, d.OnReply.Columns())
		got := d.OnReply.PickColumns(map[string]string{"first_name": "ana", "city": "Porto", "phone": "+1", "tier": "gold"})
		wantEqual(t, "picked", map[string]string{"first_name": "ana", "city": "Porto", "coupon code": "", "tier": "gold"}, got)
	})

	t.Run("ReplyFieldsOnlyCarryNothing", func(t *testing.T) {
		t.Parallel()
		d, err := campaigns.Parse("c.yaml", []byte(onReplyHead+"on_reply:\n  - any: true\n    message: {text: \"got {{ .reply }} {{ .button }} {{ .list_row }}\"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if cols := d.OnReply.Columns(); len(cols) != 0 {
			t.Fatalf("columns %v, want none", cols)
		}
		if got := d.OnReply.PickColumns(map[string]string{"first_name": "ana"}); got != nil {
			t.Fatalf("picked %v, want nil: payloads of such campaigns must not change", got)
		}
	})

	t.Run("RefusesReadsWithoutAName", func(t *testing.T) {
		t.Parallel()
		for _, text := range []string{"{{ . }}", "{{ $ }}", "{{ $k := \"a\" }}{{ index . $k }}", "{{ len . }}"} {
			_, err := campaigns.Parse("c.yaml", []byte(onReplyHead+"on_reply:\n  - any: true\n    message: {text: '"+text+"'}\n"))
			wantErrContains(t, err, "c.yaml:6:21: on_reply[0].message.text: reads the audience row as a whole")
		}
	})
}

func TestCheckReplyColumns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", "phone,first_name,city,coupon code,tier\n+15550000001,ana,Porto,X1,gold\n")
	writeFile(t, dir, "b.csv", "phone,first_name,button\n+15550000001,ana,b\n")
	writeFile(t, dir, "a.jsonl", `{"phone":"+15550000001"}`+"\n")
	load := func(t *testing.T, yaml string) *campaigns.Definition {
		t.Helper()
		d, err := campaigns.Parse(filepath.Join(dir, "c.yaml"), []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("EveryColumnThere", func(t *testing.T) {
		t.Parallel()
		d := load(t, columnsCampaign)
		if err := campaigns.CheckReplyColumns(d); err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "first row", map[string]string{"first_name": "ana", "city": "Porto", "coupon code": "X1", "tier": "gold"},
			d.FirstRowReplyColumns())
	})

	t.Run("MissingColumnWithPosition", func(t *testing.T) {
		t.Parallel()
		d := load(t, onReplyHead+"on_reply:\n  - any: true\n    template: {name: t}\n    parameters: {body_1: \"{{ .nickname }}\"}\n")
		err := campaigns.CheckReplyColumns(d)
		var fe campaigns.Errors
		if !errors.As(err, &fe) || len(fe) != 1 {
			t.Fatalf("error %v, want one field error", err)
		}
		wantErrContains(t, err, "c.yaml:7:26: on_reply[0].parameters.body_1: reads column \"nickname\", which the audience a.csv does not have")
	})

	t.Run("ColumnNamedLikeAReplyField", func(t *testing.T) {
		t.Parallel()
		d := load(t, "id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: b.csv}\non_reply:\n  - any: true\n    message: {text: \"{{ .button }}\"}\n")
		wantErrContains(t, campaigns.CheckReplyColumns(d), "on_reply[0].message.text: reads .button, the reply's button, and the audience also has a column \"button\"")
		// Not read by a rule: the column is the main template's business.
		d = load(t, "id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: b.csv}\non_reply:\n  - any: true\n    message: {text: \"{{ .first_name }}\"}\n")
		if err := campaigns.CheckReplyColumns(d); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("JSONLinesNotChecked", func(t *testing.T) {
		t.Parallel()
		d := load(t, "id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: a.jsonl}\non_reply:\n  - any: true\n    message: {text: \"{{ .nickname }}\"}\n")
		if err := campaigns.CheckReplyColumns(d); err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "first row", map[string]string{"nickname": ""}, d.FirstRowReplyColumns())
	})
}

// A payload's ReplyCols are encoded as json.Marshal would, and not at all when empty.
func TestEncodeSendReplyCols(t *testing.T) {
	t.Parallel()
	p := campaigns.SendPayload{Run: "r", To: "+15550000001", Template: "t", ReplyCols: map[string]string{
		"z": "last", "first_name": "Ana <&>", "coupon code": "x\u2028\xff", "": ""}}
	want, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := campaigns.EncodeSend(p); string(got) != string(want) {
		t.Fatalf("EncodeSend\n got %s\nwant %s", got, want)
	}
	back, err := campaigns.DecodeSend(want)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "decoded", map[string]string{"z": "last", "first_name": "Ana <&>", "coupon code": "x\u2028\ufffd", "": ""}, back.ReplyCols)
	p.ReplyCols = map[string]string{}
	if got, _ := json.Marshal(p); string(campaigns.EncodeSend(p)) != string(got) {
		t.Fatalf("empty ReplyCols: %s, want %s", campaigns.EncodeSend(p), got)
	}
}
