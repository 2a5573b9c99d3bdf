// The benchmark's peer: the tutorial's producer as a competent Go engineer writes it. gqlgen
// serves the tutorial's schema; one long-lived confluent-kafka-go (librdkafka) producer with
// acks=all sends each event, and a request is answered only after its own delivery reports.
// Records are the JSON the pageviews consumer reads (keyed by userId, murmur2 partitioning as
// Kafka's Java client does).
//
// Usage: go-producer -brokers HOST:PORT -topic NAME -partitions N -listen 127.0.0.1:PORT -linger-ms MS
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/vektah/gqlparser/v2/ast"

	"pageviews.bench/goproducer/graph"
)

// record is the page view as the pageviews consumer decodes it (event::PageView).
type record struct {
	ID         string `json:"id"`
	EventType  string `json:"eventType"`
	UserID     string `json:"userId"`
	Path       string `json:"path"`
	Search     string `json:"search"`
	Title      string `json:"title"`
	URL        string `json:"url"`
	ReceivedAt string `json:"receivedAt"`
}

type resolver struct {
	producer *kafka.Producer
	topic    string
}

func (r *resolver) Mutation() graph.MutationResolver { return &mutation{r} }
func (r *resolver) Query() graph.QueryResolver       { return &query{} }

type query struct{}

func (q *query) Ping(ctx context.Context) (*graph.PingResponse, error) {
	return &graph.PingResponse{Message: "pong"}, nil
}

type mutation struct{ *resolver }

func (m *mutation) RegisterKafkaEvent(ctx context.Context, event graph.RegisterKafkaEventInput) (*graph.Event, error) {
	events, err := m.send(ctx, []*graph.RegisterKafkaEventInput{&event})
	if err != nil {
		return nil, err
	}
	return events[0], nil
}

func (m *mutation) RegisterKafkaEvents(ctx context.Context, events []*graph.RegisterKafkaEventInput) ([]*graph.Event, error) {
	return m.send(ctx, events)
}

// send produces every event and waits for each delivery report.
func (m *mutation) send(ctx context.Context, inputs []*graph.RegisterKafkaEventInput) ([]*graph.Event, error) {
	reports := make(chan kafka.Event, len(inputs))
	out := make([]*graph.Event, 0, len(inputs))
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, in := range inputs {
		id, err := uuid4()
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(record{id, in.EventType, in.UserID, in.Path, in.Search, in.Title, in.URL, now})
		if err != nil {
			return nil, err
		}
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &m.topic, Partition: kafka.PartitionAny},
			Key:            []byte(in.UserID),
			Value:          value,
		}
		if err := m.producer.Produce(msg, reports); err != nil {
			return nil, fmt.Errorf("producing: %w", err)
		}
		out = append(out, &graph.Event{ID: id, EventType: in.EventType, UserID: in.UserID,
			Path: in.Path, Search: in.Search, Title: in.Title, URL: in.URL})
	}
	for range inputs {
		select {
		case e := <-reports:
			if msg, ok := e.(*kafka.Message); ok && msg.TopicPartition.Error != nil {
				return nil, fmt.Errorf("delivery: %w", msg.TopicPartition.Error)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

func uuid4() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

func ensureTopic(brokers, topic string, partitions int) error {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": brokers})
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{
		{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1},
	})
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Error.Code() != kafka.ErrNoError && r.Error.Code() != kafka.ErrTopicAlreadyExists {
			return errors.New(r.Error.String())
		}
	}
	return nil
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap servers")
	topic := flag.String("topic", "PAGE_VIEW", "topic")
	partitions := flag.Int("partitions", 4, "partitions of a topic it creates")
	listen := flag.String("listen", "127.0.0.1:8090", "HTTP address")
	linger := flag.Int("linger-ms", 5, "librdkafka linger.ms")
	flag.Parse()

	if err := ensureTopic(*brokers, *topic, *partitions); err != nil {
		log.Fatalf("creating topic %s: %v", *topic, err)
	}
	producer, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": *brokers,
		"acks":              "all",
		"linger.ms":         strconv.Itoa(*linger),
		"partitioner":       "murmur2_random",
	})
	if err != nil {
		log.Fatalf("producer: %v", err)
	}
	defer producer.Close()
	// Errors that are not a message's own (a broker down) are logged.
	go func() {
		for e := range producer.Events() {
			if err, ok := e.(kafka.Error); ok {
				log.Printf("kafka: %v", err)
			}
		}
	}()

	srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: &resolver{producer, *topic}}))
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})

	mux := http.NewServeMux()
	mux.Handle("/query", srv)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	log.Printf("listening on %s (linger.ms=%d)", *listen, *linger)
	log.Fatal(http.ListenAndServe(*listen, mux))
}
