package program

import (
	"fmt"
	"os"
	"testing"
)

func TestScratch(t *testing.T) {
	code := os.Getenv("CODE")
	if code == "" {
		t.Skip()
	}
	p, err := Prepare(code)
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	fmt.Printf("result=%v parseFailed=%v\n---\n%s\n---\n", p.Result, p.ParseFailed, p.Module)
	for _, i := range p.Imports {
		fmt.Printf("%+v\n", i)
	}
}
