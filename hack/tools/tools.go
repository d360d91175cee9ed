//go:build tools

// Package tools pins the main packages that hack/build-tools.sh builds.
// It is never compiled (build tag `tools`); it only makes `go mod tidy`
// keep their dependencies in go.mod/go.sum.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
