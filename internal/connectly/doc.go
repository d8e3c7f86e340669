// Package connectly is Herald's client for the Connectly messaging API.
//
// It sends WhatsApp template messages (POST /v1/businesses/{id}/send/whatsapp_templated_messages),
// decodes the documented error body into *Error, reports network failures as *TransportError
// (which says whether the request may have reached Connectly), and holds the one table that
// classifies every documented error code, error type and HTTP status into a Class:
// permanent, transient, throttle or stop-run. Table.Decide reads an answer once into that
// class and an Outcome (accepted, refused, not taken, maybe sent). See DefaultTable.
package connectly
