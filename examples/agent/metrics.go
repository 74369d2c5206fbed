package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/response"
)

// metrics are the agent's Prometheus metrics.
type metrics struct {
	reg        *prometheus.Registry
	events     *prometheus.CounterVec
	detections *prometheus.CounterVec
	decisions  *prometheus.CounterVec
	isoState   *prometheus.GaugeVec
	deadline   prometheus.Gauge
	busUp      prometheus.Gauge
	latency    prometheus.Histogram
}

var isolationStates = []isolation.State{isolation.StateOff, isolation.StateIsolating, isolation.StateOn, isolation.StateReleasing, isolation.StateFailed}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cordon", Subsystem: "agent", Name: "events_total",
			Help: "Events read, by source."}, []string{"source"}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cordon", Subsystem: "agent", Name: "detections_total",
			Help: "Detections made, by engine."}, []string{"engine"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cordon", Subsystem: "agent", Name: "decisions_total",
			Help: "Rule decisions, by rule, action and result."}, []string{"rule", "action", "result"}),
		isoState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "cordon", Subsystem: "agent", Name: "isolation_state",
			Help: "1 for the isolation state the host is in, 0 for the others."}, []string{"state"}),
		deadline: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cordon", Subsystem: "agent", Name: "isolation_deadline_seconds",
			Help: "Unix time at which the isolation ends by itself; 0 when not isolated or until released."}),
		busUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cordon", Subsystem: "agent", Name: "bus_connected",
			Help: "1 while the bus connection is up."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "cordon", Subsystem: "agent", Name: "detection_to_enforcement_seconds",
			Help:    "From a detection to the isolation it caused being in force (rules applied and read back).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
	}
	m.reg.MustRegister(m.events, m.detections, m.decisions, m.isoState, m.deadline, m.busUp, m.latency)
	m.setStatus(isolation.Status{State: isolation.StateOff})
	return m
}

func (m *metrics) setStatus(st isolation.Status) {
	for _, s := range isolationStates {
		v := 0.0
		if s == st.State {
			v = 1
		}
		m.isoState.WithLabelValues(string(s)).Set(v)
	}
	if st.State != isolation.StateOff && !st.Deadline.IsZero() {
		m.deadline.Set(float64(st.Deadline.UnixNano()) / 1e9)
	} else {
		m.deadline.Set(0)
	}
}

func (m *metrics) decision(d *response.Decision) {
	for _, r := range d.Rules {
		if len(r.Actions) == 0 {
			m.decisions.WithLabelValues(r.Rule, "", r.Result).Inc()
		}
		for _, a := range r.Actions {
			m.decisions.WithLabelValues(r.Rule, a.Type, a.Result).Inc()
		}
	}
}

// serve serves /metrics on addr until ctx ends.
func (m *metrics) serve(ctx context.Context, addr string, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}
