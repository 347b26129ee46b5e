package ingest

import (
	"errors"

	"github.com/segmentio/kafka-go"
)

// Permanent reports whether err is a Kafka error that retrying will not
// mend: authorisation or authentication refused, or a group id the brokers
// will not take. Everything else (brokers down, leaders moving, groups
// rebalancing) passes with time, so readers retry it and report not ready
// meanwhile; a permanent error ends them, and serve with them.
func Permanent(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kafka.TopicAuthorizationFailed, kafka.GroupAuthorizationFailed, kafka.ClusterAuthorizationFailed,
		kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism, kafka.InvalidGroupId:
		return true
	}
	return false
}
