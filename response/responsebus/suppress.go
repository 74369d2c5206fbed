package responsebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cordonsec/cordon/response"
)

// BucketSuppression is the KV bucket of suppression windows.
const BucketSuppression = "cordon-suppression"

// SuppressionsConfig configures the KV suppression store. The zero value
// is valid.
type SuppressionsConfig struct {
	// Bucket names the bucket. Empty: BucketSuppression.
	Bucket string
	// MaxPeriod is the longest suppression period the rules use; records
	// older than it are dropped by the bucket. Zero:
	// response.DefaultMaxSuppressPeriod (30 days).
	MaxPeriod time.Duration
	// Replicas of the bucket. Zero: 1.
	Replicas int
	// Retries bounds the attempts of one Hit racing other engines on the
	// same key. Zero: 10.
	Retries int
}

// Suppressions is a response.SuppressionStore in a JetStream KV bucket:
// one record per (rule, key), updated with compare-and-set, so several
// engines share the windows and a restarted engine finds them.
type Suppressions struct {
	kv      jetstream.KeyValue
	retries int
}

// NewSuppressions creates or updates the bucket and returns the store.
// It fails with the JetStream error.
func NewSuppressions(ctx context.Context, js jetstream.JetStream, cfg SuppressionsConfig) (*Suppressions, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = BucketSuppression
	}
	if cfg.MaxPeriod <= 0 {
		cfg.MaxPeriod = response.DefaultMaxSuppressPeriod
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 10
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "cordon: response suppression windows per rule and key",
		History:     1,
		TTL:         cfg.MaxPeriod,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("responsebus: bucket %s: %w", cfg.Bucket, err)
	}
	return &Suppressions{kv: kv, retries: cfg.Retries}, nil
}

func (s *Suppressions) get(ctx context.Context, k string) (*response.SuppressionRecord, uint64, error) {
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var rec response.SuppressionRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		// A record that does not decode is treated as absent and replaced.
		return nil, e.Revision(), nil
	}
	return &rec, e.Revision(), nil
}

// Hit implements response.SuppressionStore.
func (s *Suppressions) Hit(ctx context.Context, rule, key, id string, now time.Time, period time.Duration) (response.Suppression, error) {
	k := response.SuppressionKey(rule, key)
	var lastErr error
	for range s.retries {
		rec, rev, err := s.get(ctx, k)
		if err != nil {
			return response.Suppression{}, fmt.Errorf("responsebus: suppression %s (rule %s): %w", k, rule, err)
		}
		next, st, changed := response.NextSuppression(rec, rule, key, id, now, period)
		if !changed {
			return st, nil
		}
		data, err := json.Marshal(next)
		if err != nil {
			return response.Suppression{}, fmt.Errorf("responsebus: suppression %s (rule %s): %w", k, rule, err)
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, k, data)
		} else {
			_, err = s.kv.Update(ctx, k, data, rev)
		}
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return response.Suppression{}, fmt.Errorf("responsebus: suppression %s (rule %s): %w", k, rule, err)
		}
		lastErr = err // another engine wrote first: read again
	}
	return response.Suppression{}, fmt.Errorf("responsebus: suppression %s (rule %s): %d attempts: %w", k, rule, s.retries, lastErr)
}

// Peek implements response.SuppressionStore.
func (s *Suppressions) Peek(ctx context.Context, rule, key string, now time.Time, period time.Duration) (response.Suppression, error) {
	k := response.SuppressionKey(rule, key)
	rec, _, err := s.get(ctx, k)
	if err != nil {
		return response.Suppression{}, fmt.Errorf("responsebus: suppression %s (rule %s): %w", k, rule, err)
	}
	_, st, _ := response.NextSuppression(rec, rule, key, "", now, period)
	return st, nil
}
