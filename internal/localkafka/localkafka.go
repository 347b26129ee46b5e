// Package localkafka runs the embedded Kafka-protocol broker (kfake) that
// rigwatch uses when no --kafka is configured. Its log, offsets and groups
// persist under a directory of ours.
package localkafka

import (
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultPartitions is the partition count of topics the broker seeds.
const DefaultPartitions = 6

// Broker is a running embedded broker.
type Broker struct {
	c *kfake.Cluster
}

// Start starts a broker persisted in dir (empty: in memory only) listening on
// port (0: a free one), with topics seeded at DefaultPartitions.
func Start(dir string, port int, topics ...string) (*Broker, error) {
	return StartWith(dir, port, topics, nil)
}

// StartCluster starts n brokers in one process, like a multi-broker Kafka:
// each partition has a leader among them, group coordinators are spread
// over them, and Cluster() can move leaders and remove brokers.
func StartCluster(dir string, n int, topics ...string) (*Broker, error) {
	return StartWith(dir, 0, topics, []kfake.Opt{kfake.NumBrokers(n)})
}

// StartWith is Start with further kfake options (TLS, SASL users, more
// brokers), which override Start's.
func StartWith(dir string, port int, topics []string, extra []kfake.Opt) (*Broker, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(DefaultPartitions)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(DefaultPartitions, topics...))
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create broker directory: %w", err)
		}
		opts = append(opts, kfake.DataDir(dir))
	}
	if port > 0 {
		opts = append(opts, kfake.Ports(port))
	}
	c, err := kfake.NewCluster(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot start the embedded Kafka broker: %w", err)
	}
	return &Broker{c: c}, nil
}

// Addrs returns the broker's listen addresses.
func (b *Broker) Addrs() []string { return b.c.ListenAddrs() }

// Close stops the broker, flushing its state to disk. Safe to call twice.
func (b *Broker) Close() {
	if b != nil && b.c != nil {
		b.c.Close()
		b.c = nil
	}
}

// Cluster returns the underlying kfake cluster, for tests that inject
// faults into its request handling.
func (b *Broker) Cluster() *kfake.Cluster { return b.c }
