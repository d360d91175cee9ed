// Command argocd runs an Argo CD Lua health check over BgpPeer fixtures the way Argo CD's
// repo server does: gopher-lua (the interpreter Argo CD embeds, Lua 5.1) with only the
// package, base and table libraries opened, the object as the global `obj`, a one-second
// deadline, and the returned table read as {status, message}.
//
// Usage: go run . SCRIPT.lua FIXTURE.yaml...
//
// A fixture is YAML with `expect.argocd.status`, `expect.argocd.message` and `object`.
// Exit status: 0 all match, 1 a mismatch, 2 an unreadable fixture or a script error.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

type fixture struct {
	Expect struct {
		ArgoCD struct {
			Status  string  `json:"status"`
			Message *string `json:"message"`
		} `json:"argocd"`
	} `json:"expect"`
	Object map[string]interface{} `json:"object"`
}

// The health codes Argo CD accepts from a Lua check.
var validStatus = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

func load(path string) (*fixture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f fixture
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parsing fixture: %w", err)
	}
	if f.Expect.ArgoCD.Status == "" || f.Expect.ArgoCD.Message == nil {
		return nil, fmt.Errorf("no expect.argocd.status / expect.argocd.message")
	}
	if f.Object == nil {
		return nil, fmt.Errorf("no object")
	}
	return &f, nil
}

// decodeValue converts a JSON-decoded value into Lua values as Argo CD does.
func decodeValue(L *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case []interface{}:
		arr := L.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(L, item))
		}
		return arr
	case map[string]interface{}:
		tbl := L.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(L, item))
		}
		return tbl
	default:
		return lua.LNil
	}
}

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func run(script string, obj map[string]interface{}) (*health, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", decodeValue(L, obj))
	if err := L.DoString(script); err != nil {
		return nil, err
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("the script returned %s, not a table", L.Get(-1).Type())
	}
	h := &health{}
	if s, ok := ret.RawGetString("status").(lua.LString); ok {
		h.Status = string(s)
	}
	if m, ok := ret.RawGetString("message").(lua.LString); ok {
		h.Message = string(m)
	}
	if !validStatus[h.Status] {
		return nil, fmt.Errorf("invalid health status %q", h.Status)
	}
	return h, nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: argocd SCRIPT.lua FIXTURE.yaml...")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	failed, broken := 0, 0
	fixtures := os.Args[2:]
	for _, path := range fixtures {
		name := filepath.Base(path)
		f, err := load(path)
		if err != nil {
			fmt.Printf("ERROR %s: %v\n", name, err)
			broken++
			continue
		}
		// Round-trip through JSON so numbers are float64, as Argo CD's unstructured objects
		// reach the Lua VM.
		raw, _ := json.Marshal(f.Object)
		var obj map[string]interface{}
		if err := json.Unmarshal(raw, &obj); err != nil {
			fmt.Printf("ERROR %s: %v\n", name, err)
			broken++
			continue
		}
		h, err := run(string(script), obj)
		if err != nil {
			fmt.Printf("ERROR %s: health.lua: %v\n", name, err)
			broken++
			continue
		}
		want := f.Expect.ArgoCD
		if h.Status != want.Status || h.Message != *want.Message {
			fmt.Printf("FAIL  %s: argocd %s %q, expected %s %q\n", name, h.Status, h.Message, want.Status, *want.Message)
			failed++
			continue
		}
		fmt.Printf("ok    %s: argocd %s %q\n", name, h.Status, h.Message)
	}
	fmt.Printf("gopher-lua: %d passed, %d failed\n", len(fixtures)-failed-broken, failed+broken)
	switch {
	case broken > 0:
		os.Exit(2)
	case failed > 0:
		os.Exit(1)
	}
}
