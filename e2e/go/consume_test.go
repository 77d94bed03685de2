package franzgo

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConsumeFromTime: replay from a point in time, through kadm's
// ListOffsetsAfterMilli and a consumer reset to AfterMilli.
func TestConsumeFromTime(t *testing.T) {
	ctx := testContext(t)
	adm := newAdmin(t)
	topic := createTopic(ctx, t, adm, 1, nil)
	base := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	var rs []*kgo.Record
	for i := 0; i < 10; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	produceSync(ctx, t, plainProducer(t), rs...)

	// The first offset with a timestamp at or after base+4.5 s is 5.
	from := base.Add(4500 * time.Millisecond).UnixMilli()
	listed, err := adm.ListOffsetsAfterMilli(ctx, from, topic)
	if err != nil {
		t.Fatalf("ListOffsetsAfterMilli: %v", err)
	}
	if o, ok := listed.Lookup(topic, 0); !ok || o.Err != nil || o.Offset != 5 || o.Timestamp != base.Add(5*time.Second).UnixMilli() {
		t.Errorf("ListOffsetsAfterMilli: %+v (found %v), want offset 5 with timestamp %d", o, ok, base.Add(5*time.Second).UnixMilli())
	}
	// After the last record: the end offset.
	listed, err = adm.ListOffsetsAfterMilli(ctx, base.Add(time.Minute).UnixMilli(), topic)
	if err != nil {
		t.Fatalf("ListOffsetsAfterMilli: %v", err)
	}
	if o, ok := listed.Lookup(topic, 0); !ok || o.Err != nil || o.Offset != 10 {
		t.Errorf("ListOffsetsAfterMilli past the last record: %+v (found %v), want offset 10", o, ok)
	}

	got := readTopic(ctx, t, topic, 5, kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(from)))
	if want := []int64{5, 6, 7, 8, 9}; fmt.Sprint(offsets(got)) != fmt.Sprint(want) {
		t.Errorf("consumer reset to %d: offsets %v, want %v", from, offsets(got), want)
	}
}

// TestConsumeSmallFetchLimits: records larger than the fetch byte limits are
// still returned, one batch at a time (KIP-74), and all arrive in order.
func TestConsumeSmallFetchLimits(t *testing.T) {
	ctx := testContext(t)
	adm := newAdmin(t)
	topic := createTopic(ctx, t, adm, 2, nil)
	producer := plainProducer(t, kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(200_000))
	var rs []*kgo.Record
	for i := 0; i < 8; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 2),
			Value: bytes.Repeat([]byte{byte('a' + i)}, 30_000+i)})
	}
	produceSync(ctx, t, producer, rs...)
	got := byPartition(readTopic(ctx, t, topic, len(rs),
		kgo.FetchMaxBytes(1000), kgo.FetchMaxPartitionBytes(500)))
	for p := int32(0); p < 2; p++ {
		if len(got[p]) != 4 {
			t.Fatalf("partition %d: %d records, want 4", p, len(got[p]))
		}
		for j, r := range got[p] {
			i := 2*j + int(p)
			if r.Offset != int64(j) || !bytes.Equal(r.Value, rs[i].Value) {
				t.Errorf("partition %d record %d: offset %d, %d bytes of %q, want offset %d, %d bytes", p, j, r.Offset, len(r.Value), r.Value[:1], j, len(rs[i].Value))
			}
		}
	}
}

// TestCreatePartitions: partitions added with kadm are listed and a group
// member consuming the topic picks them up.
func TestCreatePartitions(t *testing.T) {
	ctx := testContext(t)
	adm := newAdmin(t)
	topic := createTopic(ctx, t, adm, 1, nil)
	group := uniqueName(t, "group")
	m := startMember(ctx, t, "member", group, topic, kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	eventually(ctx, t, "member owns partition 0", func() (bool, string) {
		failOnErrors(t, m)
		ps, _, _ := m.snapshot()
		return len(ps) == 1, fmt.Sprintf("assigned %v", ps)
	})
	resp, err := adm.CreatePartitions(ctx, 2, topic)
	if err != nil || resp[topic].Err != nil {
		t.Fatalf("CreatePartitions: %v / %v", err, resp[topic].Err)
	}
	eventually(ctx, t, "ListTopics shows three partitions", func() (bool, string) {
		details, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		return len(details[topic].Partitions) == 3, fmt.Sprintf("%d partitions", len(details[topic].Partitions))
	})
	eventually(ctx, t, "member owns partitions 0, 1 and 2", func() (bool, string) {
		failOnErrors(t, m)
		ps, _, _ := m.snapshot()
		return len(ps) == 3, fmt.Sprintf("assigned %v", ps)
	})
	fill(ctx, t, plainProducer(t), topic, 3, 2, "v")
	eventually(ctx, t, "member read the records of all three partitions", func() (bool, string) {
		failOnErrors(t, m)
		_, rs, _ := m.snapshot()
		return len(rs) == 6, fmt.Sprintf("%d records", len(rs))
	})
}

// TestStaticMembership: a member with an instance id (KIP-345) joins and is
// described with it.
func TestStaticMembership(t *testing.T) {
	ctx := testContext(t)
	adm := newAdmin(t)
	topic := createTopic(ctx, t, adm, 2, nil)
	group := uniqueName(t, "group")
	instance := uniqueName(t, "instance")
	m := startMember(ctx, t, "static member", group, topic, kgo.InstanceID(instance))
	eventually(ctx, t, "static member owns both partitions", func() (bool, string) {
		failOnErrors(t, m)
		ps, _, _ := m.snapshot()
		return len(ps) == 2, fmt.Sprintf("assigned %v", ps)
	})
	eventually(ctx, t, "DescribeGroups shows the instance id", func() (bool, string) {
		groups, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		d := groups[group]
		if d.Err != nil || d.State != "Stable" || len(d.Members) != 1 {
			return false, fmt.Sprintf("state %s, %d members, err %v", d.State, len(d.Members), d.Err)
		}
		id := d.Members[0].InstanceID
		return id != nil && *id == instance, fmt.Sprintf("instance id %v", id)
	})
}
