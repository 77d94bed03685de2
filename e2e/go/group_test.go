package franzgo

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// member is one group consumer polling in the background; it tracks its
// assignment through the rebalance callbacks and keeps what it consumed.
type member struct {
	name     string
	cl       *kgo.Client
	mu       sync.Mutex
	assigned map[int32]bool
	records  []*kgo.Record
	errs     []error
	done     chan struct{}
}

func startMember(ctx context.Context, t *testing.T, name, group, topic string, opts ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, assigned: make(map[int32]bool), done: make(chan struct{})}
	change := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				m.assigned[p] = add
			}
		}
	}
	m.cl = newClient(t, append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(change(true)),
		kgo.OnPartitionsRevoked(change(false)),
		kgo.OnPartitionsLost(change(false)),
	}, opts...)...)
	go func() {
		defer close(m.done)
		for {
			fs := m.cl.PollFetches(ctx)
			if fs.IsClientClosed() || ctx.Err() != nil {
				return
			}
			m.mu.Lock()
			fs.EachError(func(topic string, p int32, err error) {
				m.errs = append(m.errs, fmt.Errorf("%s: fetch %s[%d]: %w", name, topic, p, err))
			})
			m.records = append(m.records, fs.Records()...)
			m.mu.Unlock()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop leaves the group and waits for the poll loop.
func (m *member) stop() {
	m.cl.Close()
	<-m.done
}

func (m *member) snapshot() (assigned []int32, records []*kgo.Record, errs []error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedPartitions(m.assigned), append([]*kgo.Record(nil), m.records...), append([]error(nil), m.errs...)
}

func failOnErrors(t *testing.T, ms ...*member) {
	t.Helper()
	for _, m := range ms {
		if _, _, errs := m.snapshot(); len(errs) > 0 {
			t.Fatalf("%s: %v", m.name, errs)
		}
	}
}

// TestGroupBalancers: two kgo members of one group share six partitions
// with the cooperative-sticky and with the range balancer; records produced
// after the split go to the member that owns their partition, once.
func TestGroupBalancers(t *testing.T) {
	for _, b := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := testContext(t)
			adm := newAdmin(t)
			const partitions, perPartition = 6, 5
			topic := createTopic(ctx, t, adm, partitions, nil)
			group := uniqueName(t, "group")
			producer := plainProducer(t)
			fill(ctx, t, producer, topic, partitions, perPartition, "first")

			a := startMember(ctx, t, "member a", group, topic, kgo.Balancers(b.balancer))
			eventually(ctx, t, "member a owns all partitions and read the first records", func() (bool, string) {
				failOnErrors(t, a)
				assigned, records, _ := a.snapshot()
				return len(assigned) == partitions && len(records) == partitions*perPartition,
					fmt.Sprintf("assigned %v, %d records", assigned, len(records))
			})
			// Committed, so that whoever owns a partition next goes on after them.
			if err := a.cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("CommitUncommittedOffsets: %v", err)
			}

			bm := startMember(ctx, t, "member b", group, topic, kgo.Balancers(b.balancer))
			eventually(ctx, t, "members a and b split the partitions 3/3", func() (bool, string) {
				failOnErrors(t, a, bm)
				pa, _, _ := a.snapshot()
				pb, _, _ := bm.snapshot()
				union := make(map[int32]bool)
				for _, p := range append(append([]int32(nil), pa...), pb...) {
					union[p] = true
				}
				return len(pa) == 3 && len(pb) == 3 && len(union) == partitions,
					fmt.Sprintf("a %v, b %v", pa, pb)
			})

			var described kadm.DescribedGroup
			eventually(ctx, t, "DescribeGroups: Stable with two members", func() (bool, string) {
				groups, err := adm.DescribeGroups(ctx, group)
				if err != nil {
					return false, err.Error()
				}
				described = groups[group]
				if described.Err != nil {
					return false, described.Err.Error()
				}
				return described.State == "Stable" && len(described.Members) == 2,
					fmt.Sprintf("state %s, %d members", described.State, len(described.Members))
			})
			if described.ProtocolType != "consumer" || described.Protocol != b.name {
				t.Errorf("DescribeGroups: protocol type %q, protocol %q, want consumer, %s", described.ProtocolType, described.Protocol, b.name)
			}
			if got := described.AssignedPartitions()[topic]; len(got) != partitions {
				t.Errorf("DescribeGroups: assigned partitions %v, want all %d", got, partitions)
			}
			for _, m := range described.Members {
				c, ok := m.Assigned.AsConsumer()
				if !ok || len(c.Topics) != 1 || len(c.Topics[0].Partitions) != 3 {
					t.Errorf("DescribeGroups: member %s assignment %+v, want 3 partitions of %s", m.MemberID, c, topic)
				}
			}

			// Every record of the first batch was consumed by one of them.
			_, ra, _ := a.snapshot()
			_, rb, _ := bm.snapshot()
			seenFirst := make(map[string]bool)
			for _, r := range append(ra, rb...) {
				seenFirst[string(r.Value)] = true
			}
			for p := int32(0); p < partitions; p++ {
				for _, v := range expectedValues("first", p, 0, perPartition) {
					if !seenFirst[v] {
						t.Errorf("first batch: %s never consumed", v)
					}
				}
			}

			na, nb := len(ra), len(rb)
			fill(ctx, t, producer, topic, partitions, perPartition, "second")
			eventually(ctx, t, "the second batch consumed", func() (bool, string) {
				failOnErrors(t, a, bm)
				_, ra, _ := a.snapshot()
				_, rb, _ := bm.snapshot()
				n := len(ra) - na + len(rb) - nb
				return n >= partitions*perPartition, fmt.Sprintf("%d of %d", n, partitions*perPartition)
			})
			pa, ra, _ := a.snapshot()
			pb, rb, _ := bm.snapshot()
			check := func(m *member, owned []int32, rs []*kgo.Record) {
				own := make(map[int32]bool)
				for _, p := range owned {
					own[p] = true
				}
				got := byPartition(rs)
				for p := int32(0); p < partitions; p++ {
					if !own[p] {
						if len(got[p]) != 0 {
							t.Errorf("%s read %d records of partition %d that it does not own", m.name, len(got[p]), p)
						}
						continue
					}
					if want := expectedValues("second", p, 0, perPartition); !equalStrings(values(got[p]), want) {
						t.Errorf("%s partition %d: read %v, want %v", m.name, p, values(got[p]), want)
					}
				}
			}
			check(a, pa, ra[na:])
			check(bm, pb, rb[nb:])
		})
	}
}

// TestGroupCommits: offsets committed by one member with CommitRecords or
// CommitUncommittedOffsets are what kadm FetchOffsets and Lag report and
// where a later member of the group starts.
func TestGroupCommits(t *testing.T) {
	for _, how := range []string{"CommitRecords", "CommitUncommittedOffsets"} {
		t.Run(how, func(t *testing.T) {
			ctx := testContext(t)
			adm := newAdmin(t)
			const partitions, perPartition = 2, 10
			topic := createTopic(ctx, t, adm, partitions, nil)
			group := uniqueName(t, "group")
			producer := plainProducer(t)
			fill(ctx, t, producer, topic, partitions, perPartition, "v")

			first := newClient(t,
				kgo.ConsumerGroup(group),
				kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.DisableAutoCommit())
			got := pollInto(ctx, t, first, partitions*perPartition)
			// CommitRecords commits offset 6 (after the record at 5) in
			// each partition; CommitUncommittedOffsets all that was polled.
			committed := int64(perPartition)
			switch how {
			case "CommitRecords":
				committed = 6
				var upTo []*kgo.Record
				for _, r := range got {
					if r.Offset < committed {
						upTo = append(upTo, r)
					}
				}
				if err := first.CommitRecords(ctx, upTo...); err != nil {
					t.Fatalf("CommitRecords: %v", err)
				}
			case "CommitUncommittedOffsets":
				if err := first.CommitUncommittedOffsets(ctx); err != nil {
					t.Fatalf("CommitUncommittedOffsets: %v", err)
				}
			}

			fetched, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatalf("FetchOffsets: %v", err)
			}
			for p := int32(0); p < partitions; p++ {
				o, ok := fetched.Lookup(topic, p)
				if !ok || o.Err != nil || o.At != committed {
					t.Errorf("FetchOffsets partition %d: %+v (found %v), want offset %d", p, o, ok, committed)
				}
			}

			lags, err := adm.Lag(ctx, group)
			if err != nil {
				t.Fatalf("Lag: %v", err)
			}
			lag := lags[group]
			if err := lag.Error(); err != nil {
				t.Fatalf("Lag %s: %v", group, err)
			}
			if lag.State != "Stable" || len(lag.Members) != 1 {
				t.Errorf("Lag: state %s with %d members, want Stable with 1", lag.State, len(lag.Members))
			}
			for p := int32(0); p < partitions; p++ {
				l, ok := lag.Lag.Lookup(topic, p)
				if !ok || l.Err != nil || l.Lag != perPartition-committed || l.End.Offset != perPartition {
					t.Errorf("Lag partition %d: %+v (found %v), want lag %d", p, l, ok, perPartition-committed)
				}
			}
			first.Close()

			// The group is empty now; lag is still reported from the commits.
			eventually(ctx, t, "DescribeGroups: Empty after the member left", func() (bool, string) {
				groups, err := adm.DescribeGroups(ctx, group)
				if err != nil {
					return false, err.Error()
				}
				d := groups[group]
				return d.Err == nil && d.State == "Empty", fmt.Sprintf("state %s, err %v", d.State, d.Err)
			})
			lags, err = adm.Lag(ctx, group)
			if err != nil {
				t.Fatalf("Lag of the empty group: %v", err)
			}
			lag = lags[group]
			if err := lag.Error(); err != nil {
				t.Fatalf("Lag of the empty group: %v", err)
			}
			if total := lag.Lag.Total(); total != partitions*(perPartition-committed) {
				t.Errorf("Lag of the empty group: total %d, want %d", total, partitions*(perPartition-committed))
			}

			fill(ctx, t, producer, topic, partitions, 5, "more")
			later := newClient(t,
				kgo.ConsumerGroup(group),
				kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.DisableAutoCommit())
			want := int(perPartition-committed) + 5
			rest := byPartition(pollInto(ctx, t, later, partitions*want))
			for p := int32(0); p < partitions; p++ {
				wantValues := append(expectedValues("v", p, int(committed), perPartition), expectedValues("more", p, 0, 5)...)
				if got := values(rest[p]); !equalStrings(got, wantValues) {
					t.Errorf("later member partition %d: read %v, want %v", p, got, wantValues)
				}
				if len(rest[p]) > 0 && rest[p][0].Offset != committed {
					t.Errorf("later member partition %d: started at offset %d, want %d", p, rest[p][0].Offset, committed)
				}
			}
			later.Close()

			// The group, empty again, is listed until it is deleted.
			listed, err := adm.ListGroups(ctx)
			if err != nil {
				t.Fatalf("ListGroups: %v", err)
			}
			if _, ok := listed[group]; !ok {
				t.Errorf("ListGroups: %s not listed", group)
			}
			deleted, err := adm.DeleteGroups(ctx, group)
			if err != nil || deleted[group].Err != nil {
				t.Fatalf("DeleteGroups: %v / %v", err, deleted[group].Err)
			}
			listed, err = adm.ListGroups(ctx)
			if err != nil {
				t.Fatalf("ListGroups: %v", err)
			}
			if _, ok := listed[group]; ok {
				t.Errorf("ListGroups: %s still listed after DeleteGroups", group)
			}
			fetched, err = adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatalf("FetchOffsets after DeleteGroups: %v", err)
			}
			if o, ok := fetched.Lookup(topic, 0); ok && o.At >= 0 {
				t.Errorf("FetchOffsets after DeleteGroups: %+v, want no commit", o)
			}
		})
	}
}
