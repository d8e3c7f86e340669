package webhooks

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/rkeys"
	"github.com/heraldmsg/herald/internal/servicewindow"
	"github.com/heraldmsg/herald/internal/testredis"
)

// On a Redis Cluster, a STOP from a customer whose event carries both a phone and a BSUID
// touches one service-window bucket per id in one script: a receiver with no business id
// (allowed, with a warning) tagged those buckets "{}", which is no tag, so they fell in two
// slots, the script failed with CROSSSLOT and the opt-out was lost behind a 503.
func TestClusterStopWithPhoneAndBSUID(t *testing.T) {
	cc := testredis.Cluster(t)
	ctx := context.Background()
	for _, business := range []string{"", "clusterbiz"} {
		t.Run("business="+business, func(t *testing.T) {
			phone := "+1555" + time.Now().Format("150405") + "9"
			bsuid := "BR.55667788990011223344"
			testredis.DeleteAtCleanup(t, cc, phone[1:])
			t.Cleanup(func() { cc.HDel(context.Background(), rkeys.Suppressed(), phone, "bsuid:"+bsuid) })
			t.Cleanup(func() { // the customer's service windows: buckets named by number, not by phone
				for _, id := range []string{phone, "bsuid:" + bsuid} {
					key, _ := servicewindow.Locate(business, id)
					cc.Del(context.Background(), key)
				}
			})
			rc, err := New(Config{Secrets: []string{testSecret}, Business: business}, Deps{Redis: cc, Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			b := &testBundle{rc: rc, l: ledger.New(cc, nil)}
			body := `{"timestamp":"` + strconv.FormatInt(time.Now().Unix(), 10) + `","sender":{"id":"` + phone +
				`","channelType":"whatsapp","userId":"` + bsuid + `","phoneNumber":"` + phone + `"},` +
				`"recipient":{"id":"+16044441234","channelType":"whatsapp"},"message":{"text":"STOP"}}`
			for range 2 { // Connectly's retry answers the same
				if w := post(t, b, []byte(body), testSecret); w.Code != http.StatusOK {
					t.Fatalf("STOP answered %d %s, want 200", w.Code, w.Body.String())
				}
			}
			s, err := b.l.Suppressions(ctx, []string{phone})
			if err != nil || !s[0].Listed() {
				t.Errorf("after a STOP the customer is not suppressed: %+v (%v)", s[0], err)
			}
		})
	}
}
