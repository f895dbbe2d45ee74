package status

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlers(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", PageHandler())
	mux.Handle("GET /status.json", JSONHandler(func() Snapshot {
		return Snapshot{TimeMs: 42, Topics: []Topic{{Name: "orders", Partitions: []Partition{{ID: 0, LogEnd: 7}}}}}
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`fetch("status.json"`, `id="topics"`, `id="groups"`, `id="nodes"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// No external assets: nothing is loaded from another origin.
	for _, bad := range []string{"http://", "https://", "<link", "src="} {
		if strings.Contains(string(page), bad) {
			t.Errorf("the page refers to an external asset (%s)", bad)
		}
	}

	resp, err = http.Get(srv.URL + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var s Snapshot
	err = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if err != nil || s.TimeMs != 42 || s.Topics[0].Name != "orders" || s.Topics[0].Partitions[0].LogEnd != 7 {
		t.Fatalf("GET /status.json = %+v, %v", s, err)
	}
	if resp, _ := http.Get(srv.URL + "/nope"); resp.StatusCode != 404 {
		t.Errorf("GET /nope = %d, want 404", resp.StatusCode)
	}
}
