// Command kstatus computes the kstatus of each BgpPeer fixture with sigs.k8s.io/cli-utils
// (the library Flux's health checks use) and compares it with the fixture's
// expect.kstatus.status.
//
// Usage: go run . FIXTURE.yaml...
//
// A fixture is YAML with `expect.kstatus.status` (Current, InProgress, Failed, Terminating,
// ...) and `object` (the BgpPeer). Exit status: 0 all match, 1 a mismatch, 2 an unreadable
// fixture.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type fixture struct {
	Expect struct {
		Kstatus struct {
			Status string `json:"status"`
		} `json:"kstatus"`
	} `json:"expect"`
	Object json.RawMessage `json:"object"`
}

func load(path string) (*fixture, *unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing YAML: %w", err)
	}
	var f fixture
	if err := json.Unmarshal(js, &f); err != nil {
		return nil, nil, fmt.Errorf("decoding fixture: %w", err)
	}
	if f.Expect.Kstatus.Status == "" {
		return nil, nil, fmt.Errorf("no expect.kstatus.status")
	}
	if len(f.Object) == 0 {
		return nil, nil, fmt.Errorf("no object")
	}
	// Unstructured's own decoder keeps integers as int64, as kstatus expects.
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(f.Object); err != nil {
		return nil, nil, fmt.Errorf("decoding object: %w", err)
	}
	return &f, u, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kstatus FIXTURE.yaml...")
		os.Exit(2)
	}
	failed, broken := 0, 0
	for _, path := range os.Args[1:] {
		name := filepath.Base(path)
		f, u, err := load(path)
		if err != nil {
			fmt.Printf("ERROR %s: %v\n", name, err)
			broken++
			continue
		}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Printf("ERROR %s: kstatus: %v\n", name, err)
			broken++
			continue
		}
		got := res.Status.String()
		if got != f.Expect.Kstatus.Status {
			fmt.Printf("FAIL  %s: kstatus %s (%q), expected %s\n", name, got, res.Message, f.Expect.Kstatus.Status)
			failed++
			continue
		}
		fmt.Printf("ok    %s: kstatus %s (%q)\n", name, got, res.Message)
	}
	fmt.Printf("kstatus: %d passed, %d failed\n", len(os.Args)-1-failed-broken, failed+broken)
	switch {
	case broken > 0:
		os.Exit(2)
	case failed > 0:
		os.Exit(1)
	}
}
