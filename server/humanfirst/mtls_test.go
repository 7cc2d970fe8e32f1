package humanfirst

import (
	"crypto/tls"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/infergo/infergo/pipelines/intent/intenttest"
	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
)

func TestParseCredentials(t *testing.T) {
	pki := newPKI(t)
	c, err := LoadCredentials(pki.writeCredentials(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Remote) != 1 || c.Remote[0].Subject.CommonName != "HumanFirst test CA" || c.KeyPair.Leaf.Subject.CommonName != "integration.example" {
		t.Errorf("parsed %+v", c.Remote)
	}
	tc := c.TLSConfig()
	if tc.MinVersion != tls.VersionTLS12 || tc.ClientAuth != tls.RequireAndVerifyClientCert || tc.ClientCAs == nil || len(tc.Certificates) != 1 {
		t.Errorf("tls config %+v", tc)
	}

	good := map[string]any{}
	json.Unmarshal(pki.credentialsJSON(t), &good)
	lk := good["local_keypair"].(map[string]any)
	otherKey := pemKey(t, pki.wrongCAKey)
	cases := []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"no keypair", func(m map[string]any) { delete(m, "local_keypair") }, "missing local_keypair"},
		{"no cert", func(m map[string]any) { m["local_keypair"] = map[string]any{"private_key": lk["private_key"]} }, "missing local_keypair.certificate"},
		{"no key", func(m map[string]any) { m["local_keypair"] = map[string]any{"certificate": lk["certificate"]} }, "missing local_keypair.private_key"},
		{"no remote", func(m map[string]any) { delete(m, "remote_certificate") }, "missing remote_certificate"},
		{"remote not PEM", func(m map[string]any) { m["remote_certificate"] = "hello" }, "no PEM certificate"},
		{"remote garbage", func(m map[string]any) {
			m["remote_certificate"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
		}, "remote_certificate"},
		{"key mismatch", func(m map[string]any) {
			m["local_keypair"] = map[string]any{"certificate": lk["certificate"], "private_key": string(otherKey)}
		}, "local_keypair"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := map[string]any{}
			json.Unmarshal(pki.credentialsJSON(t), &m)
			c.edit(m)
			b, _ := json.Marshal(m)
			_, err := ParseCredentials(b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := ParseCredentials([]byte("[]")); err == nil {
		t.Error("array accepted")
	}
	if _, err := LoadCredentials("/nonexistent/creds.json"); err == nil {
		t.Error("missing file accepted")
	}
}

// TestMutualTLS: the platform's client (certificate from remote_certificate's CA) gets in;
// a client of another CA, a client without a certificate and a TLS 1.1 client do not.
func TestMutualTLS(t *testing.T) {
	ts := startServer(t, Config{Embedder: (&intenttest.HashEmbedder{}).Provider()}, nil)
	call := func(tc *tls.Config) error {
		_, err := integrationpb.NewDiscoveryClient(ts.dialWith(t, tc)).GetCapabilities(testCtx(t), &integrationpb.GetCapabilitiesRequest{})
		return err
	}
	if err := call(ts.pki.clientTLS(&ts.pki.client)); err != nil {
		t.Fatalf("platform client rejected: %v", err)
	}
	wrong := ts.pki.clientTLS(&ts.pki.wrongClient)
	if err := call(wrong); status.Code(err) != codes.Unavailable {
		t.Errorf("wrong-CA client: %v, want Unavailable (handshake refused)", err)
	}
	if err := call(ts.pki.clientTLS(nil)); status.Code(err) != codes.Unavailable {
		t.Errorf("client without certificate: %v", err)
	}
	old := ts.pki.clientTLS(&ts.pki.client)
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if err := call(old); status.Code(err) != codes.Unavailable {
		t.Errorf("TLS 1.1 client: %v", err)
	}
	// Also at the TLS layer, without gRPC in between.
	conn, err := tls.Dial("tcp", ts.addr, wrong)
	if err == nil {
		// TLS 1.3 reports the client-certificate rejection on the first read.
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("raw TLS with the wrong CA: %v", err)
	}
}
