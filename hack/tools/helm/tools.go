//go:build tools

// Package tools pins helm for hack/build-tools.sh. Helm lives in its own
// module because helm v3.22 requires k8s.io/* v0.37, which would conflict
// with the v0.36 replaces of the parent wrapper module (kubernetes v1.36).
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
