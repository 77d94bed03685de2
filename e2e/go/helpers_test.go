package franzgo

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testTimeout bounds each test; every wait inside it polls until a deadline.
const testTimeout = 60 * time.Second

var nameSeq atomic.Int64

// seeds returns the bootstrap addresses, or skips the test without them.
func seeds(t *testing.T) []string {
	t.Helper()
	bootstrap := os.Getenv("KAFKA_BOOTSTRAP")
	if bootstrap == "" {
		t.Skip("KAFKA_BOOTSTRAP is not set (run e2e/go/run.sh)")
	}
	return strings.Split(bootstrap, ",")
}

// brokerKind is "runnel" or "kafka", as run.sh sets BROKER.
func brokerKind() string { return os.Getenv("BROKER") }

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// uniqueName is a topic, group or transactional id no other test or run uses.
func uniqueName(t *testing.T, kind string) string {
	t.Helper()
	return fmt.Sprintf("go-%s-%s-%d-%d", unsafeName.ReplaceAllString(t.Name(), "."), kind,
		time.Now().UnixNano()%1_000_000_000, nameSeq.Add(1))
}

func clientLogger() kgo.Logger {
	var level kgo.LogLevel
	switch os.Getenv("KGO_LOG") {
	case "debug":
		level = kgo.LogLevelDebug
	case "info":
		level = kgo.LogLevelInfo
	case "warn":
		level = kgo.LogLevelWarn
	default:
		return nil
	}
	return kgo.BasicLogger(os.Stderr, level, nil)
}

// newClient starts a kgo client on the test broker, closed when the test ends.
func newClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := []kgo.Opt{kgo.SeedBrokers(seeds(t)...), kgo.ClientID("runnel-e2e-go")}
	if logger := clientLogger(); logger != nil {
		all = append(all, kgo.WithLogger(logger))
	}
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newAdmin(t *testing.T) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newClient(t))
}

// eventually calls check until it reports done or the context ends, then
// fails the test with the last state check described.
func eventually(ctx context.Context, t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		done, state := check()
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached before the deadline; last state: %s", what, state)
		case <-tick.C:
		}
	}
}

// createTopic creates a fresh topic with kadm and waits until ListTopics
// shows every partition with a leader.
func createTopic(ctx context.Context, t *testing.T, adm *kadm.Client, partitions int32, configs map[string]*string) string {
	t.Helper()
	topic := uniqueName(t, "topic")
	// -1: the broker's default.replication.factor (three on a cluster).
	resp, err := adm.CreateTopic(ctx, partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("CreateTopic %s: %v", topic, err)
	}
	eventually(ctx, t, "topic "+topic+" listed with leaders", func() (bool, string) {
		details, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		d, ok := details[topic]
		if !ok {
			return false, "not listed"
		}
		if d.Err != nil {
			return false, d.Err.Error()
		}
		if len(d.Partitions) != int(partitions) {
			return false, fmt.Sprintf("%d partitions", len(d.Partitions))
		}
		for p, pd := range d.Partitions {
			if pd.Err != nil || pd.Leader < 0 {
				return false, fmt.Sprintf("partition %d: leader %d, err %v", p, pd.Leader, pd.Err)
			}
		}
		return true, ""
	})
	return topic
}

// pollInto polls cl until want records arrived or the context ends; fetch
// errors other than the context's fail the test.
func pollInto(ctx context.Context, t *testing.T, cl *kgo.Client, want int) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("polled %d of %d records before the deadline", len(got), want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	return got
}

// readTopic reads want records of topic from the start of every partition
// with a fresh direct (group-less) consumer.
func readTopic(ctx context.Context, t *testing.T, topic string, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	defer cl.Close()
	return pollInto(ctx, t, cl, want)
}

// byPartition splits records by partition, each in fetch (offset) order.
func byPartition(rs []*kgo.Record) map[int32][]*kgo.Record {
	out := make(map[int32][]*kgo.Record)
	for _, r := range rs {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

func values(rs []*kgo.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

func offsets(rs []*kgo.Record) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Offset
	}
	return out
}

func sortedPartitions(ps map[int32]bool) []int32 {
	out := make([]int32, 0, len(ps))
	for p, ok := range ps {
		if ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// produceSync produces records synchronously and fails on any error.
func produceSync(ctx context.Context, t *testing.T, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
}

// plainProducer produces to explicit partitions (Record.Partition).
func plainProducer(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
}

// fill produces n records with values "<prefix>-p<partition>-<i>" to each of
// partitions 0..partitions-1.
func fill(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, partitions int32, n int, prefix string) {
	t.Helper()
	var rs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p,
				Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s-p%d-%d", prefix, p, i)})
		}
	}
	produceSync(ctx, t, cl, rs...)
}

func expectedValues(prefix string, p int32, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-p%d-%d", prefix, p, i))
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
