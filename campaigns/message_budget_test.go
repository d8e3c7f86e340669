package campaigns_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
)

// listMessage is a list message whose rows' texts are texts, and whose text is text.
func listMessage(text string, texts []string) connectly.SessionContent {
	rows := make([]connectly.Row, len(texts))
	for i, s := range texts {
		rows[i] = connectly.Row{ID: fmt.Sprintf("i%d", i), Text: s}
	}
	return connectly.SessionContent{Text: text, List: &connectly.List{Button: "b",
		Sections: []connectly.Section{{Title: "s", Rows: rows}}}}
}

// columnsRow is a row text writing n columns, from .c<first> on.
func columnsRow(first, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{{.c%d}}", first+i)
	}
	return b.String()
}

// The list rows past WhatsApp's limit are refused before the sample rows are rendered, and
// left out of them: with a long slice in its text, every column of every row had a 64 KiB
// sample value of its own (a 500 KB file of 450 rows took 3.25 GB).
func TestCheckMessageRowsBeforeProbes(t *testing.T) { //nolint:paralleltest // measures the heap (allocated reads the process's TotalAlloc)
	texts := make([]string, 12)
	for i := range texts {
		texts[i] = columnsRow(i*40, 40)
	}
	c := listMessage("{{ slice .z 0 65535 }}", texts)
	var problems []connectly.Problem
	alloc := allocated(1, func() { problems = campaigns.CheckMessage(c) })
	// The rows past the limit are problems; the fields within it are checked on the rows.
	if len(problems) != 3 || problems[0].String() != "list.sections[0].rows[10]: at most 10 rows in all sections" ||
		problems[2].Field != "text" {
		t.Fatalf("CheckMessage = %v", problems)
	}
	if alloc > 4<<20 {
		t.Errorf("CheckMessage allocated %d bytes for %d columns", alloc, 12*40)
	}
}

// The long sample row shares one value between its columns: a valid list whose rows write
// many columns, next to a long slice, costs little memory to check.
func TestCheckMessageLongRowShared(t *testing.T) { //nolint:paralleltest // measures the heap (allocated reads the process's TotalAlloc)
	texts := make([]string, 10)
	for i := range texts {
		texts[i] = columnsRow(i*100, 100)
	}
	c := listMessage("{{ slice .z 0 65535 }}", texts)
	var problems []connectly.Problem
	alloc := allocated(1, func() { problems = campaigns.CheckMessage(c) })
	// The text's slice is too long on every row; the rows' texts are left to the rows.
	if len(problems) != 1 || problems[0].Field != "text" {
		t.Fatalf("CheckMessage = %v", problems)
	}
	if alloc > 16<<20 {
		t.Errorf("CheckMessage allocated %d bytes for 1,000 columns", alloc)
	}
}

// A message's templates together have at most 8,192 parts, as a template's parameters do:
// a message over it is refused at its kind's key, before its sample rows.
func TestCheckMessageNodeBudget(t *testing.T) {
	t.Parallel()
	texts := make([]string, 10)
	for i := range texts {
		texts[i] = columnsRow(i*120, 120)
	}
	rows := listMessage("hi", texts).List.Sections[0].Rows
	for i := range rows {
		rows[i].Description = columnsRow(10_000+i*120, 120)
	}
	c := listMessage("hi", nil)
	c.List.Sections[0].Rows = rows
	problems := campaigns.CheckMessage(c)
	if len(problems) != 1 || problems[0].String() != "list: the message's templates have 9646 parts together, at most 8192 for one message" {
		t.Fatalf("CheckMessage = %v", problems)
	}
	if _, err := campaigns.NewSessionRenderer(c); err == nil || !strings.Contains(err.Error(), "at most 8192 for one message") {
		t.Fatalf("NewSessionRenderer: %v", err)
	}
	// Under the bound, the same message is checked on its rows.
	c.List.Sections[0].Rows = rows[:8]
	if problems := campaigns.CheckMessage(c); len(problems) != 0 {
		t.Fatalf("CheckMessage of 8 rows = %v", problems)
	}
	_, err := campaigns.Parse("m.yaml", []byte(sessionCampaign("  text: hi\n  list:\n    button: b\n    sections:\n      - title: s\n        rows:\n"+
		strings.Repeat("          - {id: x, text: \""+columnsRow(0, 120)+"\", description: \""+columnsRow(0, 120)+"\"}\n", 9))))
	if err == nil || !strings.Contains(err.Error(), ":6:5: message.list: the message's templates have 8682 parts together, at most 8192 for one message") {
		t.Fatalf("Parse: %v", err)
	}
}

// chainRows are list row texts that assign variables backwards, each row from the next
// one's (the shape of a file whose check scanned every row once per variable it settled).
func chainRows(rows, k int) []string {
	out := make([]string, rows)
	for r := range rows {
		var b strings.Builder
		base := r * k
		for j := base; j <= base+k; j++ {
			src := "0"
			if j == 0 {
				src = ".c"
			}
			fmt.Fprintf(&b, "{{$v%d := %s}}", j, src)
		}
		for j := base + k; j > base; j-- {
			fmt.Fprintf(&b, "{{$v%d = $v%d}}", j, j-1)
		}
		b.WriteString("x")
		out[r] = b.String()
	}
	return out
}

// Variables belong to their field: one row's $v40 is not another's, and a chain of
// assignments is followed a bounded number of times. Checking 10 rows of 40 assignments
// each scanned the message 400 times.
func TestCheckMessageVariableChains(t *testing.T) { //nolint:paralleltest // measures the heap (allocated reads the process's TotalAlloc)
	c := listMessage("{{ slice .c 0 5 }}", chainRows(10, 40))
	var problems []connectly.Problem
	alloc := allocated(1, func() { problems = campaigns.CheckMessage(c) })
	if len(problems) != 0 {
		t.Fatalf("CheckMessage = %v", problems)
	}
	if alloc > 16<<20 {
		t.Errorf("CheckMessage allocated %d bytes", alloc)
	}
}

// A slice of a variable reads its columns once a call, and a variable of one field does not
// hold another's columns: 5 rows declaring $x from 120 columns each, and 5 slicing their own
// $x 60 times, read 600 columns at every slice.
func TestCheckMessagePooledVariables(t *testing.T) { //nolint:paralleltest // measures the heap (allocated reads the process's TotalAlloc)
	var texts []string
	for i := range 5 {
		cols := make([]string, 120)
		for j := range cols {
			cols[j] = fmt.Sprintf(".c%d", i*120+j)
		}
		texts = append(texts, "{{$x := or "+strings.Join(cols, " ")+"}}")
	}
	for range 5 {
		texts = append(texts, "{{$x := 0}}"+strings.Repeat("{{slice $x 0 5}}", 60))
	}
	c := listMessage("hi", texts)
	var problems []connectly.Problem
	alloc := allocated(1, func() { problems = campaigns.CheckMessage(c) })
	if len(problems) != 5 {
		t.Fatalf("CheckMessage = %v", problems)
	}
	if alloc > 16<<20 {
		t.Errorf("CheckMessage allocated %d bytes", alloc)
	}
}

// The sections past the limit are left out of the sample rows with the rows past it: the
// fields within the limits are checked as before.
func TestCheckMessageWithinLimits(t *testing.T) {
	t.Parallel()
	sec := func(title string, n int) connectly.Section {
		s := connectly.Section{Title: title}
		for i := range n {
			s.Rows = append(s.Rows, connectly.Row{ID: fmt.Sprintf("%s%d", title, i), Text: "{{ .name }}"})
		}
		return s
	}
	c := connectly.SessionContent{Text: "hi", List: &connectly.List{Button: "b",
		Sections: []connectly.Section{sec("a", 6), sec("b", 4), sec("c", 2), sec("d", 0)}}}
	c.List.Sections[1].Rows[3].Text = "{{ slice .name 0 -1 }}" // fails on every row
	got := fmt.Sprint(campaigns.CheckMessage(c))
	want := "[list.sections[1].rows[3].text: {{ slice .name 0 -1 }} at column 4 of the template: index -1 is out of range (on every row) " +
		"list.sections[2].rows[0]: at most 10 rows in all sections list.sections[2].rows[1]: at most 10 rows in all sections]"
	if got != want {
		t.Fatalf("CheckMessage =\n%s\nwant\n%s", got, want)
	}
	if len(c.List.Sections) != 4 || len(c.List.Sections[0].Rows) != 6 {
		t.Fatal("CheckMessage changed its content")
	}
	b := connectly.SessionContent{Text: "hi", ReplyButtons: &connectly.ReplyButtons{}}
	for i := range 5 {
		b.ReplyButtons.Buttons = append(b.ReplyButtons.Buttons, connectly.Button{ID: fmt.Sprint(i), Text: "{{ .name }}" + fmt.Sprint(i)})
	}
	if got := fmt.Sprint(campaigns.CheckMessage(b)); got != "[reply_buttons.buttons[3]: at most 3 buttons reply_buttons.buttons[4]: at most 3 buttons]" {
		t.Fatalf("CheckMessage of 5 buttons = %s", got)
	}
}

// The fitted sample row shares one text between the columns sliced far: 700 columns each
// sliced to 64 KiB had a value of their own.
func TestCheckMessageFittedRowShared(t *testing.T) { //nolint:paralleltest // measures the heap (allocated reads the process's TotalAlloc)
	texts := make([]string, 10)
	for i := range texts {
		var b strings.Builder
		for j := range 70 {
			fmt.Fprintf(&b, "{{ slice .c%d 0 65535 }}", i*70+j)
		}
		texts[i] = b.String()
	}
	c := listMessage("hi", texts)
	var problems []connectly.Problem
	alloc := allocated(1, func() { problems = campaigns.CheckMessage(c) })
	if len(problems) != 10 {
		t.Fatalf("CheckMessage = %v", problems)
	}
	if alloc > 16<<20 {
		t.Errorf("CheckMessage allocated %d bytes for 700 sliced columns", alloc)
	}
}
