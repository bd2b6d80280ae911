// Evaluates Argo CD Notifications configuration the way notifications-engine does, for tests:
// templates with Go's text/template and sprig's TxtFuncMap (less env and expandenv),
// trigger conditions with expr (expr.Compile then expr.Run against the same variables).
//
// Input on stdin, output on stdout, both JSON:
//   {"cases": [{"vars": {...}, "templates": {"id": "text"}, "exprs": {"id": "expression"}}]}
//   {"cases": [{"templates": {"id": {"out": "...", "error": "..."}}, "exprs": {"id": {"value": ..., "error": "..."}}}]}
//
// Built in GOPATH mode against Debian's packages (golang-github-masterminds-sprig-dev,
// golang-github-antonmedv-expr-dev): no module download.
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/antonmedv/expr"
)

type input struct {
	Cases []struct {
		Vars      map[string]interface{} `json:"vars"`
		Templates map[string]string      `json:"templates"`
		Exprs     map[string]string      `json:"exprs"`
	} `json:"cases"`
}

type result struct {
	Out   string      `json:"out,omitempty"`
	Value interface{} `json:"value,omitempty"`
	Error string      `json:"error,omitempty"`
}

type caseResult struct {
	Templates map[string]result `json:"templates"`
	Exprs     map[string]result `json:"exprs"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	out := struct {
		Cases []caseResult `json:"cases"`
	}{}
	for _, c := range in.Cases {
		// Argo CD passes `context` as map[string]string; JSON decoding gives interface{} maps.
		if ctx, ok := c.Vars["context"].(map[string]interface{}); ok {
			strs := map[string]string{}
			for k, v := range ctx {
				strs[k], _ = v.(string)
			}
			c.Vars["context"] = strs
		}
		res := caseResult{Templates: map[string]result{}, Exprs: map[string]result{}}
		for id, text := range c.Templates {
			tmpl, err := template.New(id).Funcs(funcs).Parse(text)
			if err != nil {
				res.Templates[id] = result{Error: "parse: " + err.Error()}
				continue
			}
			var buf bytes.Buffer
			if err := tmpl.Execute(&buf, c.Vars); err != nil {
				res.Templates[id] = result{Error: "execute: " + err.Error()}
				continue
			}
			res.Templates[id] = result{Out: buf.String()}
		}
		for id, text := range c.Exprs {
			prog, err := expr.Compile(text)
			if err != nil {
				res.Exprs[id] = result{Error: "compile: " + err.Error()}
				continue
			}
			val, err := expr.Run(prog, c.Vars)
			if err != nil {
				res.Exprs[id] = result{Error: "run: " + err.Error()}
				continue
			}
			res.Exprs[id] = result{Value: val}
		}
		out.Cases = append(out.Cases, res)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
