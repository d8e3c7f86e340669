// Package connectly is Herald's client for the Connectly messaging API.
//
// It sends WhatsApp template messages (POST /v1/businesses/{id}/send/whatsapp_templated_messages),
// decodes the documented error body into *Error, reports network failures as *TransportError
// (which says whether the request may have reached Connectly), and holds the one table that
// classifies every documented error code, error type and HTTP status into a Class:
// permanent, transient, throttle or stop-run. Table.Decide reads an answer once into that
// class and an Outcome (accepted, refused, not taken, maybe sent). See DefaultTable.
//
// Session messages. Client.SendSession sends a free-form message inside the customer's
// 24-hour window (POST /v1/businesses/{id}/send/messages) through the same request, answer
// and error path as SendTemplate. A SessionMessage carries the recipient (E.164 or
// "bsuid:<BSUID>"; ClientConfig.SessionBSUIDField says whether a BSUID goes in recipient.id,
// the default, or recipient.userId), the optional sender, message id, callbackData and
// campaignName, and a SessionContent of exactly one kind: text, one attachment, a location,
// reply buttons, a list, or a single- or multi-product object passed through as written.
// Validate checks every kind against Meta's limits before anything is sent and names the
// field at fault (*InvalidMessageError, wrapping ErrInvalidMessage). SessionContent is also
// the shape of a campaign's message: block (YAML or JSON): MapStrings renders its text fields
// per recipient, and Client.Wire().EncodeSession (a Wire) returns the exact request body;
// campaignName goes out only when ClientConfig.SendCampaignName is set. An answer saying the
// window is closed reads as Decision.WindowClosed (IsWindowClosed): a refusal, never retried.
package connectly
