package franzgo

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Compression type numbers as record batch attributes carry them.
var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
	attr  uint8
}{
	{"none", kgo.NoCompression(), 0},
	{"gzip", kgo.GzipCompression(), 1},
	{"snappy", kgo.SnappyCompression(), 2},
	{"lz4", kgo.Lz4Compression(), 3},
	{"zstd", kgo.ZstdCompression(), 4},
}

var produceModes = []struct {
	name  string
	async bool
	opts  []kgo.Opt
}{
	// kgo is idempotent by default, which needs acks=all.
	{"sync-acks-all-idempotent", false, []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
	{"async-acks-1-not-idempotent", true, []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
	{"async-acks-all-idempotent", true, []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
}

// TestProduce writes keyed records with headers and timestamps to three
// partitions in every mode and compression, and reads them back in order.
func TestProduce(t *testing.T) {
	for _, mode := range produceModes {
		for _, c := range codecs {
			t.Run(mode.name+"/"+c.name, func(t *testing.T) {
				ctx := testContext(t)
				adm := newAdmin(t)
				const partitions, perPartition = 3, 40
				topic := createTopic(ctx, t, adm, partitions, nil)

				// Millisecond timestamps: the protocol's precision.
				base := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
				var want []*kgo.Record
				for i := 0; i < perPartition; i++ {
					for p := int32(0); p < partitions; p++ {
						want = append(want, &kgo.Record{
							Topic:     topic,
							Partition: p,
							Key:       fmt.Appendf(nil, "key-%d-%d", p, i),
							Value:     []byte(fmt.Sprintf("value-%d-%d-", p, i) + strings.Repeat("compressible ", i%7)),
							Headers: []kgo.RecordHeader{
								{Key: "seq", Value: fmt.Appendf(nil, "%d", i)},
								{Key: "empty", Value: []byte{}},
								{Key: "seq", Value: []byte("repeated key")},
							},
							Timestamp: base.Add(time.Duration(i*int(partitions)+int(p)) * time.Millisecond),
						})
					}
				}
				// A record with a nil key and an empty value.
				want = append(want, &kgo.Record{Topic: topic, Partition: 1, Value: []byte{}, Timestamp: base.Add(time.Minute)})

				opts := append([]kgo.Opt{kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(5 * time.Millisecond)}, mode.opts...)
				cl := plainProducer(t, opts...)
				var produced []*kgo.Record
				if mode.async {
					var mu sync.Mutex
					var wg sync.WaitGroup
					var firstErr error
					for _, r := range want {
						wg.Add(1)
						cl.Produce(ctx, cloneRecord(r), func(r *kgo.Record, err error) {
							defer wg.Done()
							mu.Lock()
							defer mu.Unlock()
							if err != nil && firstErr == nil {
								firstErr = err
							}
							produced = append(produced, r)
						})
					}
					if err := cl.Flush(ctx); err != nil {
						t.Fatalf("Flush: %v", err)
					}
					wg.Wait()
					if firstErr != nil {
						t.Fatalf("async produce: %v", firstErr)
					}
				} else {
					var rs []*kgo.Record
					for _, r := range want {
						rs = append(rs, cloneRecord(r))
					}
					results := cl.ProduceSync(ctx, rs...)
					if err := results.FirstErr(); err != nil {
						t.Fatalf("ProduceSync: %v", err)
					}
					for _, res := range results {
						produced = append(produced, res.Record)
					}
				}

				// The acknowledged offsets follow the order of production in each partition.
				for p, rs := range byPartition(produced) {
					if got := offsets(rs); !consecutiveFromZero(got) {
						t.Fatalf("partition %d: acknowledged offsets %v, want 0, 1, 2, ... in order of production", p, got)
					}
				}
				// The codec each record's batch was sent with (kgo sets the
				// acknowledged record's Attrs from its batch): the one asked
				// for, except that kgo sends a batch uncompressed when
				// compressing does not make it smaller, as a batch of one
				// short record can be when the linger ends early under load.
				sentCodec := make(map[int32]map[int64]uint8)
				compressedRecords := 0
				for _, r := range produced {
					ct := r.Attrs.CompressionType()
					if ct != c.attr && ct != 0 {
						t.Errorf("partition %d offset %d: sent with compression %d, want %d (%s) or none", r.Partition, r.Offset, ct, c.attr, c.name)
					}
					if ct == c.attr {
						compressedRecords++
					}
					if sentCodec[r.Partition] == nil {
						sentCodec[r.Partition] = make(map[int64]uint8)
					}
					sentCodec[r.Partition][r.Offset] = ct
				}
				if compressedRecords == 0 {
					t.Fatalf("no record was sent compressed with %s", c.name)
				}

				got := readTopic(ctx, t, topic, len(want))
				if len(got) != len(want) {
					t.Fatalf("read %d records, want %d", len(got), len(want))
				}
				gotBy, wantBy := byPartition(got), byPartition(want)
				for p := int32(0); p < partitions; p++ {
					g, w := gotBy[p], wantBy[p]
					if len(g) != len(w) {
						t.Fatalf("partition %d: read %d records, want %d", p, len(g), len(w))
					}
					for i := range w {
						if g[i].Offset != int64(i) {
							t.Errorf("partition %d record %d: offset %d", p, i, g[i].Offset)
						}
						compareRecord(t, fmt.Sprintf("partition %d offset %d", p, i), g[i], w[i])
						if ct, sent := g[i].Attrs.CompressionType(), sentCodec[p][g[i].Offset]; ct != sent {
							t.Errorf("partition %d offset %d: batch compression %d, want %d as sent (%s asked for)", p, i, ct, sent, c.name)
						}
						if g[i].Attrs.TimestampType() != 0 {
							t.Errorf("partition %d offset %d: timestamp type %d, want 0 (CreateTime)", p, i, g[i].Attrs.TimestampType())
						}
					}
				}
				ends, err := adm.ListEndOffsets(ctx, topic)
				if err != nil || ends.Error() != nil {
					t.Fatalf("ListEndOffsets: %v / %v", err, ends.Error())
				}
				for p := int32(0); p < partitions; p++ {
					end, _ := ends.Lookup(topic, p)
					if end.Offset != int64(len(wantBy[p])) {
						t.Errorf("partition %d: end offset %d, want %d", p, end.Offset, len(wantBy[p]))
					}
				}
			})
		}
	}
}

// TestProduceLogAppendTime: a topic with message.timestamp.type=LogAppendTime
// replaces the producer's timestamps by the broker's and marks the batches
// so. (kgo does not copy the append time of the produce response into the
// record, so only the fetched records are checked.)
func TestProduceLogAppendTime(t *testing.T) {
	ctx := testContext(t)
	adm := newAdmin(t)
	logAppend := "LogAppendTime"
	topic := createTopic(ctx, t, adm, 1, map[string]*string{"message.timestamp.type": &logAppend})
	cl := plainProducer(t)
	before := time.Now().Add(-time.Second)
	old := time.UnixMilli(before.Add(-24 * time.Hour).UnixMilli())
	results := cl.ProduceSync(ctx,
		&kgo.Record{Topic: topic, Value: []byte("a"), Timestamp: old},
		&kgo.Record{Topic: topic, Value: []byte("b"), Timestamp: old})
	if err := results.FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	after := time.Now().Add(time.Second)
	for _, r := range readTopic(ctx, t, topic, 2) {
		if r.Attrs.TimestampType() != 1 {
			t.Errorf("record %q: timestamp type %d, want 1 (LogAppendTime)", r.Value, r.Attrs.TimestampType())
		}
		if r.Timestamp.Before(before) || r.Timestamp.After(after) {
			t.Errorf("record %q: timestamp %v, want between %v and %v", r.Value, r.Timestamp, before, after)
		}
	}
}

func consecutiveFromZero(os []int64) bool {
	for i, o := range os {
		if o != int64(i) {
			return false
		}
	}
	return true
}

func cloneRecord(r *kgo.Record) *kgo.Record {
	c := *r
	c.Headers = append([]kgo.RecordHeader(nil), r.Headers...)
	return &c
}

func compareRecord(t *testing.T, where string, got, want *kgo.Record) {
	t.Helper()
	if (got.Key == nil) != (want.Key == nil) || !bytes.Equal(got.Key, want.Key) {
		t.Errorf("%s: key %q (nil %v), want %q (nil %v)", where, got.Key, got.Key == nil, want.Key, want.Key == nil)
	}
	if !bytes.Equal(got.Value, want.Value) {
		t.Errorf("%s: value %q, want %q", where, got.Value, want.Value)
	}
	if !got.Timestamp.Equal(want.Timestamp) {
		t.Errorf("%s: timestamp %v, want %v", where, got.Timestamp, want.Timestamp)
	}
	if len(got.Headers) != len(want.Headers) {
		t.Errorf("%s: %d headers, want %d", where, len(got.Headers), len(want.Headers))
		return
	}
	for i := range want.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || !bytes.Equal(got.Headers[i].Value, want.Headers[i].Value) {
			t.Errorf("%s: header %d %q=%q, want %q=%q", where, i,
				got.Headers[i].Key, got.Headers[i].Value, want.Headers[i].Key, want.Headers[i].Value)
		}
	}
}

// TestProduceIdempotentInflight: an idempotent producer (kgo then keeps up to
// five produce requests in flight per broker) with tiny batches; every record
// lands once, in order.
func TestProduceIdempotentInflight(t *testing.T) {
	ctx := testContext(t)
	adm := newAdmin(t)
	const partitions, perPartition = 4, 500
	topic := createTopic(ctx, t, adm, partitions, nil)
	cl := plainProducer(t,
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(512))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < perPartition; i++ {
		for p := int32(0); p < partitions; p++ {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "v-p%d-%d", p, i)}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
			})
		}
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	got := byPartition(readTopic(ctx, t, topic, partitions*perPartition))
	for p := int32(0); p < partitions; p++ {
		if want := expectedValues("v", p, 0, perPartition); !equalStrings(values(got[p]), want) {
			t.Errorf("partition %d: %d records, not v-p%d-0..%d in order", p, len(got[p]), p, perPartition-1)
		}
	}
}
