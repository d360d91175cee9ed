//go:build tools

// Package tools pins promtool for hack/build-tools.sh (`promtool test rules` checks the
// chart's alert rules). It lives in its own module because Prometheus pulls in its own
// k8s.io/client-go and cloud SDK versions, which must not move the other tools' pins.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
