package campaigns_test

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// readAll opens the audience of def and returns every row.
func readAll(tb testing.TB, def *campaigns.Definition) []campaigns.Row {
	tb.Helper()
	ar, err := campaigns.OpenAudience(def)
	if err != nil {
		tb.Fatalf("OpenAudience: %v", err)
	}
	defer ar.Close()
	var rows []campaigns.Row
	for {
		row, err := ar.Next()
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			tb.Fatalf("Next after %d rows: %v", len(rows), err)
		}
		rows = append(rows, row)
	}
}

func TestAudience(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		dir string
		def *campaigns.Definition
	}
	// setup returns a definition whose audience is a CSV with content, in a fresh directory,
	// with the campaign file next to it so the relative path is exercised.
	setup := func(t *testing.T, content string) *testBundle {
		t.Helper()
		dir := t.TempDir()
		writeFile(t, dir, "audience.csv", content)
		def := &campaigns.Definition{
			Path:     writeFile(t, dir, "campaign.yaml", ""),
			Audience: campaigns.Audience{File: "audience.csv", Phone: "phone"},
		}
		return &testBundle{dir: dir, def: def}
	}

	t.Run("RowsWithHeaderColumns", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phone,first_name,code\n+12015550123,ana,SPRING\n+5511961234567,João,VERÃO\n")
		rows := readAll(t, b.def)
		want := []campaigns.Row{
			{N: 1, Line: 2, Cols: map[string]string{"phone": "+12015550123", "first_name": "ana", "code": "SPRING"}, Recipient: "+12015550123"},
			{N: 2, Line: 3, Cols: map[string]string{"phone": "+5511961234567", "first_name": "João", "code": "VERÃO"}, Recipient: "+5511961234567"},
		}
		wantEqual(t, "rows", want, rows)
	})

	t.Run("ByteOrderMarkTolerated", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "\ufeffphone,name\n+12015550123,ana\n")
		rows := readAll(t, b.def)
		wantEqual(t, "rows", 1, len(rows))
		wantEqual(t, "recipient", "+12015550123", rows[0].Recipient)
		wantEqual(t, "name", "ana", rows[0].Cols["name"])
	})

	t.Run("HeaderNamesTrimmed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, " phone , name\n+12015550123,ana\n")
		rows := readAll(t, b.def)
		wantEqual(t, "cols", map[string]string{"phone": "+12015550123", "name": "ana"}, rows[0].Cols)
	})

	t.Run("QuotedFieldsWithCommasAndNewlines", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phone,address,note\n"+
			"+12015550123,\"1 Main St, Springfield\",\"line one\nline two\"\n"+
			"\"+1 201 555 0124\",\"say \"\"hi\"\"\",x\n")
		rows := readAll(t, b.def)
		wantEqual(t, "row count", 2, len(rows))
		wantEqual(t, "address", "1 Main St, Springfield", rows[0].Cols["address"])
		wantEqual(t, "note", "line one\nline two", rows[0].Cols["note"])
		wantEqual(t, "second row N", 2, rows[1].N)
		wantEqual(t, "second row line", 4, rows[1].Line)
		wantEqual(t, "second recipient", "+12015550124", rows[1].Recipient)
		wantEqual(t, "escaped quotes", `say "hi"`, rows[1].Cols["address"])
	})

	t.Run("OtherPhoneColumn", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "name,mobile\nana,+447400123456\n")
		b.def.Audience.Phone = "mobile"
		rows := readAll(t, b.def)
		wantEqual(t, "recipient", "+447400123456", rows[0].Recipient)
	})

	t.Run("SkipReasons", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phone,name\n"+
			"+12015550123,valid\n"+
			",empty\n"+
			"   ,blank\n"+
			"not a number,junk\n"+
			"+1 555 0100,too short\n"+
			"2015550123,no country code\n"+
			"\n"+ // blank lines are not rows
			"+5511961234567,valid again\n")
		rows := readAll(t, b.def)
		type got struct {
			N          int
			Line       int
			Recipient  string
			SkipReason string
		}
		want := []got{
			{1, 2, "+12015550123", ""},
			{2, 3, "", "missing_phone"},
			{3, 4, "", "missing_phone"},
			{4, 5, "", "invalid_phone"},
			{5, 6, "", "invalid_phone"},
			{6, 7, "", "invalid_phone"},
			{7, 9, "+5511961234567", ""},
		}
		gots := make([]got, len(rows))
		for i, r := range rows {
			gots[i] = got{r.N, r.Line, r.Recipient, r.SkipReason}
			if (r.SkipReason == "") != (r.Err == nil) {
				t.Errorf("row %d: SkipReason %q with Err %v", r.N, r.SkipReason, r.Err)
			}
		}
		wantEqual(t, "rows", want, gots)
		wantErrContains(t, rows[5].Err, "no country code", "default_region")
	})

	t.Run("ShortRowHasNoPhone", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "name,phone,code\nana\nbia,+12015550123\n")
		rows := readAll(t, b.def)
		wantEqual(t, "skip reason", "missing_phone", rows[0].SkipReason)
		wantEqual(t, "cols", map[string]string{"name": "ana"}, rows[0].Cols)
		wantEqual(t, "cols", map[string]string{"name": "bia", "phone": "+12015550123"}, rows[1].Cols)
		wantEqual(t, "recipient", "+12015550123", rows[1].Recipient)
	})

	t.Run("NationalNumbersWithDefaultRegion", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phone\n(201) 555-0123\n201.555.0124\n+5511961234567\n0044 7400 123456\n12\n")
		b.def.Audience.DefaultRegion = "US"
		rows := readAll(t, b.def)
		got := make([]string, len(rows))
		for i, r := range rows {
			got[i] = r.Recipient + r.SkipReason
		}
		wantEqual(t, "recipients", []string{"+12015550123", "+12015550124", "+5511961234567", "invalid_phone", "invalid_phone"}, got)
	})

	t.Run("MissingPhoneColumn", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "name,mobile\nana,+12015550123\n")
		_, err := campaigns.OpenAudience(b.def)
		wantErrContains(t, err, b.def.AudiencePath()+":1:", `no "phone" column`, `columns: "name", "mobile"`)
	})

	t.Run("EmptyFile", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "")
		_, err := campaigns.OpenAudience(b.def)
		wantErrContains(t, err, b.def.AudiencePath(), "file is empty")
	})

	t.Run("HeaderOnly", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phone,name\n")
		wantEqual(t, "rows", 0, len(readAll(t, b.def)))
	})

	t.Run("MissingFile", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phone\n")
		b.def.Audience.File = "other.csv"
		_, err := campaigns.OpenAudience(b.def)
		wantErrContains(t, err, "other.csv")
	})

	t.Run("MalformedHeader", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phone,na\"me\n")
		_, err := campaigns.OpenAudience(b.def)
		wantErrContains(t, err, b.def.AudiencePath(), "bare \"")
	})

	t.Run("BareQuoteIsAnErrorNamingTheFile", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phone,name\n+12015550123,ana\n+12015550124,an\"a\n")
		ar, err := campaigns.OpenAudience(b.def)
		if err != nil {
			t.Fatalf("OpenAudience: %v", err)
		}
		defer ar.Close()
		if _, err := ar.Next(); err != nil {
			t.Fatalf("first row: %v", err)
		}
		_, err = ar.Next()
		wantErrContains(t, err, "audience "+b.def.AudiencePath()+":3: row 2:", "bare \"")
	})

	t.Run("UnterminatedQuote", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phone,name\n+12015550123,\"ana\n")
		ar, err := campaigns.OpenAudience(b.def)
		if err != nil {
			t.Fatalf("OpenAudience: %v", err)
		}
		defer ar.Close()
		_, err = ar.Next()
		wantErrContains(t, err, b.def.AudiencePath(), "extraneous or missing \"")
	})
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		raw     string
		region  string
		want    string
		wantErr string
	}{
		{name: "USInternational", raw: "+1 201-555-0123", want: "+12015550123"},
		{name: "USNational", raw: "(201) 555-0123", region: "US", want: "+12015550123"},
		{name: "USE164", raw: "+12015550123", region: "BR", want: "+12015550123"},
		{name: "BRMobile", raw: "+55 11 96123-4567", want: "+5511961234567"},
		{name: "BRMobileNational", raw: "(11) 96123-4567", region: "BR", want: "+5511961234567"},
		{name: "UKMobile", raw: "+44 7400 123456", want: "+447400123456"},
		{name: "UKMobileNational", raw: "07400 123456", region: "GB", want: "+447400123456"},
		{name: "InternationalPrefixWithRegion", raw: "0044 7400 123456", region: "US", wantErr: "not a valid phone number"},
		{name: "InternationalPrefixFromUK", raw: "0044 7400 123456", region: "GB", want: "+447400123456"},
		{name: "NoCountryCodeNoRegion", raw: "2015550123", wantErr: "no country code"},
		{name: "DoubleZeroWithoutRegion", raw: "0044 7400 123456", wantErr: "invalid country code"},
		{name: "Letters", raw: "call me", region: "US", wantErr: "not a phone number"},
		{name: "TooShort", raw: "+1 201", wantErr: "not a valid phone number"},
		{name: "TooLong", raw: "+1 201 555 0123 4567 8901", wantErr: "too long"},
		{name: "InvalidAreaCode", raw: "+1 555 555 0123", wantErr: "not a valid phone number"},
		{name: "UnknownCountryCode", raw: "+999 1234 5678", wantErr: "invalid country code"},
		{name: "PlusOnly", raw: "+", wantErr: "not a phone number"},
		{name: "Empty", raw: "", region: "US", wantErr: "not a phone number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := campaigns.NormalizePhone(tt.raw, tt.region)
			if tt.wantErr != "" {
				wantErrContains(t, err, tt.wantErr)
				wantEqual(t, "result with an error", "", got)
				// The number comes from an audience file: errors never quote it.
				if tt.raw != "" && strings.Contains(err.Error(), tt.raw) {
					t.Errorf("error %q quotes the number", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizePhone(%q, %q): %v", tt.raw, tt.region, err)
			}
			wantEqual(t, "E.164", tt.want, got)
		})
	}
}

func TestCountLines(t *testing.T) {
	t.Parallel()

	// CountLines is an upper bound on the rows of a file (header included): one more than
	// its newlines, so an unterminated last line counts too.
	tests := []struct {
		name    string
		content string
		want    int
	}{
		{name: "Empty", content: "", want: 1},
		{name: "HeaderOnly", content: "phone\n", want: 2},
		{name: "Terminated", content: "phone\n+12015550123\n+12015550124\n", want: 4},
		{name: "Unterminated", content: "phone\n+12015550123\n+12015550124", want: 3},
		{name: "CRLF", content: "phone\r\n+12015550123\r\n", want: 3},
		{name: "QuotedNewlinesCounted", content: "phone,note\n+12015550123,\"a\nb\"\n", want: 4},
		{name: "LargerThanTheBuffer", content: strings.Repeat("+12015550123,some padding to pass 256 KiB\n", 10_000), want: 10_001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, t.TempDir(), "a.csv", tt.content)
			got, err := campaigns.CountLines(&campaigns.Definition{Path: filepath.Join(filepath.Dir(path), "c.yaml"), Audience: campaigns.Audience{File: "a.csv"}})
			if err != nil {
				t.Fatalf("CountLines: %v", err)
			}
			wantEqual(t, "lines", tt.want, got)
		})
	}

	t.Run("MissingFile", func(t *testing.T) {
		t.Parallel()
		_, err := campaigns.CountLines(&campaigns.Definition{Path: filepath.Join(t.TempDir(), "c.yaml"), Audience: campaigns.Audience{File: "nope.csv"}})
		wantErrContains(t, err, "nope.csv")
	})
}
