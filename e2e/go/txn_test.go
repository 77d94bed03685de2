package franzgo

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func beginTxn(t *testing.T, cl *kgo.Client) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("BeginTransaction: %v", err)
	}
}

func endTxn(ctx context.Context, t *testing.T, cl *kgo.Client, commit kgo.TransactionEndTry) {
	t.Helper()
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		t.Fatalf("EndTransaction(commit=%v): %v", commit, err)
	}
}

func listOffsets(ctx context.Context, t *testing.T, what string, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string, p int32) int64 {
	t.Helper()
	offs, err := list(ctx, topic)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	o, ok := offs.Lookup(topic, p)
	if !ok || o.Err != nil {
		t.Fatalf("%s %s[%d]: %+v (found %v)", what, topic, p, o, ok)
	}
	return o.Offset
}

// TestTransactions: a transactional producer commits, aborts and commits;
// read-committed consumers see the committed records only, read-uncommitted
// ones all, with the control batches taking one offset each. An open
// transaction holds the last stable offset back until it commits.
func TestTransactions(t *testing.T) {
	ctx := testContext(t)
	adm := newAdmin(t)
	const partitions = 2
	topic := createTopic(ctx, t, adm, partitions, nil)
	txnID := uniqueName(t, "txn")
	cl := plainProducer(t, kgo.TransactionalID(txnID), kgo.TransactionTimeout(30*time.Second))

	batch := func(prefix string, n int) {
		var rs []*kgo.Record
		for p := int32(0); p < partitions; p++ {
			for i := 0; i < n; i++ {
				rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s-p%d-%d", prefix, p, i)})
			}
		}
		produceSync(ctx, t, cl, rs...)
	}
	beginTxn(t, cl)
	batch("c1", 5)
	endTxn(ctx, t, cl, kgo.TryCommit)
	beginTxn(t, cl)
	batch("a1", 5)
	endTxn(ctx, t, cl, kgo.TryAbort)
	beginTxn(t, cl)
	batch("c2", 3)
	endTxn(ctx, t, cl, kgo.TryCommit)

	// Offsets: c1 0-4, commit marker 5, a1 6-10, abort marker 11, c2 12-14, commit marker 15.
	committed := byPartition(readTopic(ctx, t, topic, partitions*8, kgo.FetchIsolationLevel(kgo.ReadCommitted())))
	uncommitted := byPartition(readTopic(ctx, t, topic, partitions*13, kgo.FetchIsolationLevel(kgo.ReadUncommitted())))
	for p := int32(0); p < partitions; p++ {
		want := append(expectedValues("c1", p, 0, 5), expectedValues("c2", p, 0, 3)...)
		if got := values(committed[p]); !equalStrings(got, want) {
			t.Errorf("read committed partition %d: %v, want %v", p, got, want)
		}
		if got, want := offsets(committed[p]), []int64{0, 1, 2, 3, 4, 12, 13, 14}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("read committed partition %d: offsets %v, want %v", p, got, want)
		}
		want = append(append(expectedValues("c1", p, 0, 5), expectedValues("a1", p, 0, 5)...), expectedValues("c2", p, 0, 3)...)
		if got := values(uncommitted[p]); !equalStrings(got, want) {
			t.Errorf("read uncommitted partition %d: %v, want %v", p, got, want)
		}
		if got, want := offsets(uncommitted[p]), []int64{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("read uncommitted partition %d: offsets %v, want %v", p, got, want)
		}
		if end := listOffsets(ctx, t, "ListEndOffsets", adm.ListEndOffsets, topic, p); end != 16 {
			t.Errorf("partition %d: end offset %d, want 16", p, end)
		}
		if lso := listOffsets(ctx, t, "ListCommittedOffsets", adm.ListCommittedOffsets, topic, p); lso != 16 {
			t.Errorf("partition %d: last stable offset %d, want 16", p, lso)
		}
	}

	// An open transaction: its records are past the last stable offset.
	beginTxn(t, cl)
	batch("open", 2)
	described, err := adm.DescribeTransactions(ctx, txnID)
	if err != nil {
		t.Fatalf("DescribeTransactions: %v", err)
	}
	d := described[txnID]
	if d.Err != nil || d.State != "Ongoing" || len(d.Topics[topic]) != partitions {
		t.Errorf("DescribeTransactions: state %q, topics %v, err %v; want Ongoing with both partitions of %s", d.State, d.Topics, d.Err, topic)
	}
	for p := int32(0); p < partitions; p++ {
		if end := listOffsets(ctx, t, "ListEndOffsets", adm.ListEndOffsets, topic, p); end != 18 {
			t.Errorf("open transaction, partition %d: end offset %d, want 18", p, end)
		}
		if lso := listOffsets(ctx, t, "ListCommittedOffsets", adm.ListCommittedOffsets, topic, p); lso != 16 {
			t.Errorf("open transaction, partition %d: last stable offset %d, want 16", p, lso)
		}
	}
	endTxn(ctx, t, cl, kgo.TryCommit)
	for p := int32(0); p < partitions; p++ {
		eventually(ctx, t, fmt.Sprintf("partition %d: last stable offset 19 after the commit", p), func() (bool, string) {
			lso := listOffsets(ctx, t, "ListCommittedOffsets", adm.ListCommittedOffsets, topic, p)
			return lso == 19, fmt.Sprintf("last stable offset %d", lso)
		})
	}
	committed = byPartition(readTopic(ctx, t, topic, partitions*10, kgo.FetchIsolationLevel(kgo.ReadCommitted())))
	for p := int32(0); p < partitions; p++ {
		want := append(append(expectedValues("c1", p, 0, 5), expectedValues("c2", p, 0, 3)...), expectedValues("open", p, 0, 2)...)
		if got := values(committed[p]); !equalStrings(got, want) {
			t.Errorf("read committed after the last commit, partition %d: %v, want %v", p, got, want)
		}
	}
}

// TestGroupTransactSession: a consume-transform-produce loop in a
// GroupTransactSession. An aborted round leaves the group's offsets and the
// read-committed output untouched and rewinds the session; a committed round
// moves both, and a later member of the group starts after it.
func TestGroupTransactSession(t *testing.T) {
	ctx := testContext(t)
	adm := newAdmin(t)
	const partitions = 2
	in := createTopic(ctx, t, adm, partitions, nil)
	out := createTopic(ctx, t, adm, partitions, nil)
	group := uniqueName(t, "group")
	producer := plainProducer(t)
	fill(ctx, t, producer, in, partitions, 5, "in")

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(seeds(t)...),
		kgo.TransactionalID(uniqueName(t, "txn")),
		kgo.TransactionTimeout(30*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		t.Fatalf("NewGroupTransactSession: %v", err)
	}
	defer sess.Close()

	// round consumes want records, produces "<input>:<tag>" to the same
	// partition of out, and ends the transaction.
	round := func(tag string, want int, commit kgo.TransactionEndTry) []*kgo.Record {
		t.Helper()
		if err := sess.Begin(); err != nil {
			t.Fatalf("%s: Begin: %v", tag, err)
		}
		var got []*kgo.Record
		for len(got) < want {
			fs := sess.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%s: polled %d of %d records before the deadline", tag, len(got), want)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s: fetch %s[%d]: %v", tag, topic, p, err) })
			got = append(got, fs.Records()...)
		}
		for _, r := range got {
			if err := sess.ProduceSync(ctx, &kgo.Record{Topic: out, Partition: r.Partition,
				Key: r.Key, Value: fmt.Appendf(nil, "%s:%s", r.Value, tag)}).FirstErr(); err != nil {
				t.Fatalf("%s: produce: %v", tag, err)
			}
		}
		committed, err := sess.End(ctx, commit)
		if err != nil {
			t.Fatalf("%s: End: %v", tag, err)
		}
		if committed != bool(commit) {
			t.Fatalf("%s: End(commit=%v) reported committed=%v", tag, commit, committed)
		}
		return got
	}
	// waitGroupOffsets waits until the group's committed offset of every
	// partition of in is want (-1: none). Kafka writes the transaction
	// markers after EndTxn answers, so FetchOffsets with RequireStable may
	// answer UNSTABLE_OFFSET_COMMIT for a moment.
	waitGroupOffsets := func(when string, want int64) {
		t.Helper()
		eventually(ctx, t, fmt.Sprintf("%s: group offsets %d", when, want), func() (bool, string) {
			fetched, err := adm.FetchOffsets(kadm.RequireStable(ctx), group)
			if err != nil {
				return false, err.Error()
			}
			state := ""
			done := true
			for p := int32(0); p < partitions; p++ {
				at := int64(-1)
				if o, ok := fetched.Lookup(in, p); ok {
					if o.Err != nil && !errors.Is(o.Err, kerr.UnstableOffsetCommit) {
						t.Fatalf("%s: FetchOffsets %s[%d]: %v", when, in, p, o.Err)
					}
					if o.Err != nil {
						done = false
						state += fmt.Sprintf(" %d:unstable", p)
						continue
					}
					at = o.At
				}
				state += fmt.Sprintf(" %d:%d", p, at)
				done = done && at == want
			}
			return done, "offsets" + state
		})
	}
	checkInput := func(tag string, rs []*kgo.Record, from, to int) {
		t.Helper()
		by := byPartition(rs)
		for p := int32(0); p < partitions; p++ {
			if got, want := values(by[p]), expectedValues("in", p, from, to); !equalStrings(got, want) {
				t.Errorf("%s: consumed %v from partition %d, want %v", tag, got, p, want)
			}
		}
	}

	checkInput("aborted round", round("r1", partitions*5, kgo.TryAbort), 0, 5)
	waitGroupOffsets("after the aborted round", -1)
	checkInput("committed round", round("r2", partitions*5, kgo.TryCommit), 0, 5)
	waitGroupOffsets("after the committed round", 5)
	fill(ctx, t, producer, in, partitions, 8, "in") // values in-p*-0..7 again at offsets 5..12
	third := round("r3", partitions*8, kgo.TryCommit)
	for p, rs := range byPartition(third) {
		if got := offsets(rs); got[0] != 5 || len(got) != 8 {
			t.Errorf("third round partition %d: consumed offsets %v, want 5..12", p, got)
		}
	}
	waitGroupOffsets("after the third round", 13)

	lags, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatalf("Lag: %v", err)
	}
	lag := lags[group]
	if err := lag.Error(); err != nil {
		t.Fatalf("Lag: %v", err)
	}
	if total := lag.Lag.Total(); total != 0 {
		t.Errorf("Lag: total %d, want 0", total)
	}

	// The output: read committed sees rounds 2 and 3 only; read uncommitted all three.
	wantCommitted := func(p int32) []string {
		var w []string
		for _, v := range expectedValues("in", p, 0, 5) {
			w = append(w, v+":r2")
		}
		for _, v := range expectedValues("in", p, 0, 8) {
			w = append(w, v+":r3")
		}
		return w
	}
	committedOut := byPartition(readTopic(ctx, t, out, partitions*13, kgo.FetchIsolationLevel(kgo.ReadCommitted())))
	uncommittedOut := byPartition(readTopic(ctx, t, out, partitions*18, kgo.FetchIsolationLevel(kgo.ReadUncommitted())))
	for p := int32(0); p < partitions; p++ {
		if got, want := values(committedOut[p]), wantCommitted(p); !equalStrings(got, want) {
			t.Errorf("output partition %d, read committed: %v, want %v", p, got, want)
		}
		var want []string
		for _, v := range expectedValues("in", p, 0, 5) {
			want = append(want, v+":r1")
		}
		want = append(want, wantCommitted(p)...)
		if got := values(uncommittedOut[p]); !equalStrings(got, want) {
			t.Errorf("output partition %d, read uncommitted: %v, want %v", p, got, want)
		}
	}

	// A plain member of the group, after the session left, starts at 13.
	sess.Close()
	fill(ctx, t, producer, in, partitions, 1, "last")
	later := newClient(t,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit())
	for p, rs := range byPartition(pollInto(ctx, t, later, partitions)) {
		if len(rs) != 1 || rs[0].Offset != 13 || string(rs[0].Value) != fmt.Sprintf("last-p%d-0", p) {
			t.Errorf("later member partition %d: read %v at %v, want last-p%d-0 at 13", p, values(rs), offsets(rs), p)
		}
	}
}

// TestTxnOffsetCommitPending: offsets committed in a transaction (raw
// AddOffsetsToTxn and TxnOffsetCommit, as a Java producer's
// sendOffsetsToTransaction does) are pending until the transaction ends:
// FetchOffsets with RequireStable answers UNSTABLE_OFFSET_COMMIT, without it
// the last stable commit. A commit makes them the group's; an abort drops them.
func TestTxnOffsetCommitPending(t *testing.T) {
	ctx := testContext(t)
	adm := newAdmin(t)
	topic := createTopic(ctx, t, adm, 1, nil)
	group := uniqueName(t, "group")
	txnID := uniqueName(t, "txn")
	cl := plainProducer(t, kgo.TransactionalID(txnID))

	// fetchOffset asks OffsetFetch for partition 0 of topic by name: Kafka
	// lists a partition whose only commit is pending in no all-topics fetch.
	fetchOffset := func(requireStable bool) (int64, error) {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group, req.RequireStable = group, requireStable
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("OffsetFetch: %v", err)
		}
		code, topics := resp.ErrorCode, resp.Topics
		if len(resp.Groups) == 1 {
			code, topics = resp.Groups[0].ErrorCode, nil
			for _, g := range resp.Groups[0].Topics {
				pt := kmsg.NewOffsetFetchResponseTopic()
				pt.Topic = g.Topic
				for _, gp := range g.Partitions {
					pp := kmsg.NewOffsetFetchResponseTopicPartition()
					pp.Partition, pp.Offset, pp.ErrorCode = gp.Partition, gp.Offset, gp.ErrorCode
					pt.Partitions = append(pt.Partitions, pp)
				}
				topics = append(topics, pt)
			}
		}
		if err := kerr.ErrorForCode(code); err != nil {
			t.Fatalf("OffsetFetch: %v", err)
		}
		if len(topics) != 1 || len(topics[0].Partitions) != 1 {
			t.Fatalf("OffsetFetch: %d topics in the response, want 1 with 1 partition", len(topics))
		}
		p := topics[0].Partitions[0]
		return p.Offset, kerr.ErrorForCode(p.ErrorCode)
	}
	commitInTxn := func(offset int64, end kgo.TransactionEndTry) {
		t.Helper()
		beginTxn(t, cl)
		produceSync(ctx, t, cl, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "at %d", offset)})
		pid, epoch, err := cl.ProducerID(ctx)
		if err != nil {
			t.Fatalf("ProducerID: %v", err)
		}
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, pid, epoch, group
		addResp, err := add.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(addResp.ErrorCode)
		}
		if err != nil {
			t.Fatalf("AddOffsetsToTxn: %v", err)
		}
		commit := kmsg.NewPtrTxnOffsetCommitRequest()
		commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = txnID, group, pid, epoch
		commit.Generation = -1
		ct := kmsg.NewTxnOffsetCommitRequestTopic()
		ct.Topic = topic
		cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset, cp.LeaderEpoch = 0, offset, -1
		ct.Partitions = append(ct.Partitions, cp)
		commit.Topics = append(commit.Topics, ct)
		commitResp, err := commit.RequestWith(ctx, cl)
		if err == nil && len(commitResp.Topics) == 1 && len(commitResp.Topics[0].Partitions) == 1 {
			err = kerr.ErrorForCode(commitResp.Topics[0].Partitions[0].ErrorCode)
		}
		if err != nil {
			t.Fatalf("TxnOffsetCommit: %v", err)
		}

		stable := int64(-1)
		if end == kgo.TryAbort {
			stable = 7 // from the committed transaction before
		}
		if at, err := fetchOffset(true); !errors.Is(err, kerr.UnstableOffsetCommit) || at != -1 {
			t.Errorf("OffsetFetch(require_stable) in the transaction: offset %d, error %v; want -1, UNSTABLE_OFFSET_COMMIT", at, err)
		}
		if at, err := fetchOffset(false); err != nil || at != stable {
			t.Errorf("OffsetFetch in the transaction: offset %d, error %v; want the stable %d", at, err, stable)
		}
		// All the group's offsets: the pending commit is not among them
		// (Kafka lists committed partitions only), or is unstable.
		fetched, err := adm.FetchOffsets(kadm.RequireStable(ctx), group)
		if err != nil {
			t.Fatalf("FetchOffsets(RequireStable) in the transaction: %v", err)
		}
		if r, ok := fetched.Lookup(topic, 0); ok && !errors.Is(r.Err, kerr.UnstableOffsetCommit) {
			t.Errorf("FetchOffsets(RequireStable) in the transaction: offset %d, error %v; want UNSTABLE_OFFSET_COMMIT or not listed", r.At, r.Err)
		}
		endTxn(ctx, t, cl, end)
	}
	waitOffset := func(when string, want int64) {
		t.Helper()
		eventually(ctx, t, fmt.Sprintf("%s: group offset %d", when, want), func() (bool, string) {
			fetched, err := adm.FetchOffsets(kadm.RequireStable(ctx), group)
			if err != nil {
				return false, err.Error()
			}
			r, _ := fetched.Lookup(topic, 0)
			at, err := r.At, r.Err
			return err == nil && at == want, fmt.Sprintf("offset %d, error %v", at, err)
		})
	}
	commitInTxn(7, kgo.TryCommit)
	waitOffset("after the commit", 7)
	commitInTxn(9, kgo.TryAbort)
	waitOffset("after the abort", 7)
	// Read back: both markers and the committed record only.
	rs := readTopic(ctx, t, topic, 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if len(rs) != 1 || string(rs[0].Value) != "at 7" {
		t.Errorf("read committed: %v, want [at 7]", values(rs))
	}
}
