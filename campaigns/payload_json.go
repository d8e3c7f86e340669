package campaigns

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// EncodeSend encodes a send payload as JSON, byte for byte what json.Marshal writes for it
// (TestEncodeSendMatchesMarshal and FuzzEncodeSend hold it to that), without reflection:
// an expansion encodes one payload per recipient, and json.Marshal was the largest cost
// left in its process.
func EncodeSend(p SendPayload) []byte {
	return AppendSend(make([]byte, 0, SendSize(&p)), &p)
}

// AppendSend appends EncodeSend's encoding of p to b.
func AppendSend(b []byte, p *SendPayload) []byte {
	b = append(b, `{"run":`...)
	b = appendJSONString(b, p.Run)
	b = append(b, `,"to":`...)
	b = appendJSONString(b, p.To)
	b = append(b, `,"b":`...)
	b = strconv.AppendInt(b, int64(p.Bucket), 10)
	b = append(b, `,"row":`...)
	b = strconv.AppendInt(b, int64(p.Row), 10)
	b = append(b, `,"c":`...)
	b = appendJSONString(b, p.Campaign)
	b = append(b, `,"tpl":`...)
	b = appendJSONString(b, p.Template)
	b = append(b, `,"lang":`...)
	b = appendJSONString(b, p.Language)
	if p.Sender != "" {
		b = append(b, `,"from":`...)
		b = appendJSONString(b, p.Sender)
	}
	if len(p.Params) > 0 {
		b = append(b, `,"params":[`...)
		for i, prm := range p.Params {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, prm.Name)
			b = append(b, `,"value":`...)
			b = appendJSONString(b, prm.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"dlv":`...)
	b = appendJSONString(b, p.Delivery)
	if p.Rate != 0 {
		b = append(b, `,"rate":`...)
		b = appendJSONFloat(b, p.Rate)
	}
	if p.Category != "" {
		b = append(b, `,"cat":`...)
		b = appendJSONString(b, p.Category)
	}
	if p.SendHours != "" {
		b = append(b, `,"win":`...)
		b = appendJSONString(b, p.SendHours)
	}
	if p.Zone != "" {
		b = append(b, `,"tz":`...)
		b = appendJSONString(b, p.Zone)
	}
	if p.Expires != 0 {
		b = append(b, `,"exp":`...)
		b = strconv.AppendInt(b, p.Expires, 10)
	}
	if p.ConfirmsOptOut {
		b = append(b, `,"oo":true`...)
	}
	if p.Kind != "" {
		b = append(b, `,"k":`...)
		b = appendJSONString(b, p.Kind)
	}
	if len(p.Session) > 0 {
		b = append(b, `,"sm":`...)
		b = appendCompactJSON(b, p.Session)
	}
	if len(p.ReplyCols) > 0 {
		b = append(b, `,"rc":{`...)
		for i, k := range slices.Sorted(maps.Keys(p.ReplyCols)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, p.ReplyCols[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// SendSize is at least the length of p's encoding when none of its strings needs escaping
// (the keys and punctuation of the fields set, their values, room for the numbers), so
// EncodeSend allocates its buffer once.
func SendSize(p *SendPayload) int {
	const number = 24 // an int64 takes at most 20 bytes, a float64 at most 24
	// {"run":"","to":"","b":,"row":,"c":"","tpl":"","lang":"","dlv":""}
	n := 65 + 2*number + len(p.Run) + len(p.To) + len(p.Campaign) + len(p.Template) + len(p.Language) + len(p.Delivery)
	opt := func(set bool, size int) {
		if set {
			n += size
		}
	}
	opt(p.Sender != "", len(`,"from":""`)+len(p.Sender))
	opt(len(p.Params) > 0, len(`,"params":[]`))
	for _, prm := range p.Params {
		n += len(`{"name":"","value":""},`) + len(prm.Name) + len(prm.Value)
	}
	opt(p.Rate != 0, len(`,"rate":`)+number)
	opt(p.Category != "", len(`,"cat":""`)+len(p.Category))
	opt(p.SendHours != "", len(`,"win":""`)+len(p.SendHours))
	opt(p.Zone != "", len(`,"tz":""`)+len(p.Zone))
	opt(p.Expires != 0, len(`,"exp":`)+number)
	opt(p.ConfirmsOptOut, len(`,"oo":true`))
	opt(p.Kind != "", len(`,"k":""`)+len(p.Kind))
	opt(len(p.Session) > 0, len(`,"sm":`)+len(p.Session))
	opt(len(p.ReplyCols) > 0, len(`,"rc":{}`))
	for k, v := range p.ReplyCols {
		n += len(`"":"",`) + len(k) + len(v)
	}
	return n
}

// appendCompactJSON writes raw JSON as json.Marshal writes a json.RawMessage: compacted, with
// <, > and & and U+2028/U+2029 escaped; invalid JSON goes through json.Marshal itself.
func appendCompactJSON(b []byte, raw json.RawMessage) []byte {
	enc, err := json.Marshal(raw)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, enc...)
}

// appendJSONFloat writes f as encoding/json does; the rare values it would write with an
// exponent (or could not encode) go through json.Marshal itself.
func appendJSONFloat(b []byte, f float64) []byte {
	if abs := math.Abs(f); abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	enc, err := json.Marshal(f)
	if err != nil {
		return append(b, '0') // NaN or ±Inf: json.Marshal fails on the whole payload
	}
	return append(b, enc...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string the way encoding/json does: quotes, backslashes
// and control characters escaped, <, > and & as \u escapes (HTML-safe), invalid UTF-8 as
// U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
