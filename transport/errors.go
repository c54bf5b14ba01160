package transport

import (
	"errors"
	"fmt"
)

// Errors for untrusted input. Every decoding or validation error wraps one
// of these, so callers count rejections by reason with ReasonOf.
var (
	ErrFrameTooLarge   = errors.New("transport: frame exceeds the size limit")
	ErrBadFrame        = errors.New("transport: bad frame length")
	ErrMalformed       = errors.New("transport: malformed protobuf")
	ErrBadType         = errors.New("transport: unknown message type")
	ErrBadID           = errors.New("transport: bad id")
	ErrBadPeerID       = errors.New("transport: bad peer ID")
	ErrNodeIDMismatch  = errors.New("transport: node id does not match peer ID")
	ErrMissingHandle   = errors.New("transport: required handle missing")
	ErrLimit           = errors.New("transport: field exceeds a limit")
	ErrBadAddr         = errors.New("transport: bad multiaddr")
	ErrFromMismatch    = errors.New("transport: sender is not the authenticated peer")
	ErrMisdirected     = errors.New("transport: message addressed to another node")
	ErrUnexpectedFrame = errors.New("transport: unexpected frame kind")
	ErrBadRemote       = errors.New("transport: remote peer has no Pastry identity")
	// ErrBadCert: in certificate mode, a handle or a stream opener whose
	// certificate is missing or refused (SecurityStats counts why).
	ErrBadCert = errors.New("transport: certificate refused")
	// ErrPuzzle: in open mode with the puzzle, a key that does not solve it.
	ErrPuzzle = errors.New("transport: identity puzzle not solved")
)

// Errors for sending.
var (
	ErrQueueFull   = errors.New("transport: send queue full")
	ErrClosed      = errors.New("transport: closed")
	ErrUnreachable = errors.New("transport: no such peer")
	ErrThrottled   = errors.New("transport: dial budget spent")
)

// Reason classifies a rejected frame, for counters.
type Reason uint8

const (
	ReasonOther Reason = iota
	ReasonFrameTooLarge
	ReasonBadFrame
	ReasonMalformed
	ReasonBadType
	ReasonBadID
	ReasonBadPeerID
	ReasonNodeIDMismatch
	ReasonMissingHandle
	ReasonLimit
	ReasonBadAddr
	ReasonFromMismatch
	ReasonMisdirected
	ReasonUnexpectedFrame
	ReasonBadRemote
	ReasonBadCert
	ReasonPuzzle
	NumReasons // the number of reasons, for arrays
)

var reasonErrs = [NumReasons]error{
	nil, ErrFrameTooLarge, ErrBadFrame, ErrMalformed, ErrBadType, ErrBadID, ErrBadPeerID,
	ErrNodeIDMismatch, ErrMissingHandle, ErrLimit, ErrBadAddr, ErrFromMismatch,
	ErrMisdirected, ErrUnexpectedFrame, ErrBadRemote, ErrBadCert, ErrPuzzle,
}

var reasonNames = [NumReasons]string{
	"other", "frame-too-large", "bad-frame", "malformed", "bad-type", "bad-id", "bad-peer-id",
	"node-id-mismatch", "missing-handle", "limit", "bad-addr", "from-mismatch",
	"misdirected", "unexpected-frame", "bad-remote", "bad-cert", "puzzle",
}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// ReasonOf returns the reason an error from this package stands for, or
// ReasonOther.
func ReasonOf(err error) Reason {
	for r := ReasonOther + 1; r < NumReasons; r++ {
		if errors.Is(err, reasonErrs[r]) {
			return r
		}
	}
	return ReasonOther
}

// Drop classifies an outgoing message the transport gave up on.
type Drop uint8

const (
	DropQueueFull   Drop = iota // the peer's send queue was full
	DropEncode                  // the message could not be encoded
	DropOpen                    // no stream could be opened (dial or negotiation failed)
	DropWrite                   // the write failed or timed out; the stream was reset
	DropClosed                  // the transport closed with the message queued
	DropUnreachable             // in-memory: no endpoint with that address; libp2p: no address to dial
	NumDrops
)

var dropNames = [NumDrops]string{"queue-full", "encode", "open", "write", "closed", "unreachable"}

func (d Drop) String() string {
	if d < NumDrops {
		return dropNames[d]
	}
	return fmt.Sprintf("drop(%d)", uint8(d))
}
