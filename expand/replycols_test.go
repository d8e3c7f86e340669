package expand_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/expand"
)

// A campaign whose on_reply rules read audience columns sends each recipient's values of
// exactly those columns in its payload; one whose rules read only the reply sends none.
func TestExpandCarriesReplyColumns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	csv := "phone,name,city,secret\n+12015550100,Ana,Porto,s1\n+12015550101,Bia,,s2\n"
	for _, tc := range []struct {
		name, rules string
		want        map[string]map[string]string
	}{
		{name: "RulesReadColumns", rules: "on_reply:\n  - any: true\n    message: {text: \"Thanks {{ .name }} from {{ .city }}, you said {{ .reply }}\"}\n",
			want: map[string]map[string]string{"+12015550100": {"name": "Ana", "city": "Porto"}, "+12015550101": {"name": "Bia", "city": ""}}},
		{name: "RulesReadTheReplyOnly", rules: "on_reply:\n  - any: true\n    message: {text: \"You said {{ .reply }}\"}\n"},
		{name: "NoRules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			def := b.campaign(t, csv, tc.rules)
			st, err := b.runs(expand.Config{}).StartRun(ctx, expand.StartParams{Def: def})
			if err != nil {
				t.Fatalf("StartRun: %v", err)
			}
			tasks := b.pending(t, st.Run.Queue)
			for _, rcpt := range []string{"+12015550100", "+12015550101"} {
				p, ok := tasks[b.taskID(st.RunID, rcpt)]
				if !ok {
					t.Fatalf("no task for %s", rcpt)
				}
				wantEqual(t, "reply columns of "+rcpt, tc.want[rcpt], p.ReplyCols)
			}
		})
	}
}

func TestStartRunRefusesMissingReplyColumn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := b.campaign(t, "phone,name\n+12015550100,Ana\n", "on_reply:\n  - any: true\n    message: {text: \"Thanks {{ .first_name }}\"}\n")
	_, err := b.runs(expand.Config{}).StartRun(context.Background(), expand.StartParams{Def: def})
	if !errors.Is(err, expand.ErrRefused) || !strings.Contains(err.Error(), `on_reply[0].message.text: reads column "first_name"`) {
		t.Fatalf("StartRun = %v, want ErrRefused naming the column", err)
	}
	if keys := b.runKeys(); len(keys) > 0 {
		t.Fatalf("a refused run wrote %v", keys)
	}
}
