package humanfirst

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
)

// testPKI is generated per test run (nothing checked in that could expire): a CA that issues
// the server's and the platform client's certificates, and a second, unrelated CA whose client
// must be rejected.
type testPKI struct {
	ca, wrongCA             *x509.Certificate
	caKey, wrongCAKey       *ecdsa.PrivateKey
	serverCertPEM, serverKP []byte
	client, wrongClient     tls.Certificate
	caPEM                   []byte
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{}
	p.ca, p.caKey = newCA(t, "HumanFirst test CA")
	p.wrongCA, p.wrongCAKey = newCA(t, "Someone else's CA")
	p.caPEM = pemCert(p.ca.Raw)
	der, key := issue(t, p.ca, p.caKey, "integration.example", x509.ExtKeyUsageServerAuth)
	p.serverCertPEM, p.serverKP = pemCert(der), pemKey(t, key)
	der, key = issue(t, p.ca, p.caKey, "humanfirst-platform", x509.ExtKeyUsageClientAuth)
	p.client = tlsPair(t, der, key)
	der, key = issue(t, p.wrongCA, p.wrongCAKey, "impostor", x509.ExtKeyUsageClientAuth)
	p.wrongClient = tlsPair(t, der, key)
	return p
}

func newCA(t testing.TB, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func issue(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, eku x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{eku},
		DNSNames:     []string{"localhost", cn},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(t testing.TB, key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func tlsPair(t testing.TB, der []byte, key *ecdsa.PrivateKey) tls.Certificate {
	pair, err := tls.X509KeyPair(pemCert(der), pemKey(t, key))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// credentialsJSON is an mtls-credentials.json as the hf CLI writes it, with one extra key to
// check that unknown keys are ignored.
func (p *testPKI) credentialsJSON(t testing.TB) []byte {
	b, err := json.Marshal(map[string]any{
		"local_keypair":      map[string]string{"certificate": string(p.serverCertPEM), "private_key": string(p.serverKP)},
		"remote_certificate": string(p.caPEM),
		"integration_id":     "int-123",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *testPKI) writeCredentials(t testing.TB) string {
	path := filepath.Join(t.TempDir(), "mtls-credentials.json")
	if err := os.WriteFile(path, p.credentialsJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientTLS trusts the test CA (to verify the server) and presents cert.
func (p *testPKI) clientTLS(cert *tls.Certificate) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	c := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// testServer is a running Server on a loopback port.
type testServer struct {
	*Server
	addr string
	pki  *testPKI
	dir  string
	done chan error
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServer runs a server configured by cfg (credentials from a generated PKI file unless
// set, a temporary data directory unless set) and stops it when the test ends.
func startServer(t testing.TB, cfg Config, pki *testPKI) *testServer {
	t.Helper()
	if pki == nil {
		pki = newPKI(t)
	}
	if cfg.Credentials == nil && cfg.CredentialsFile == "" {
		cfg.CredentialsFile = pki.writeCredentials(t)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, addr: ln.Addr().String(), pki: pki, dir: cfg.DataDir, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-ts.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// dial connects a grpc-go client over mTLS with the platform's client certificate.
func (ts *testServer) dial(t testing.TB) *grpc.ClientConn {
	t.Helper()
	return ts.dialWith(t, ts.pki.clientTLS(&ts.pki.client))
}

func (ts *testServer) dialWith(t testing.TB, tc *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(ts.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(200<<20), grpc.MaxCallSendMsgSize(200<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

type clients struct {
	discovery  integrationpb.DiscoveryClient
	models     integrationpb.ModelsClient
	workspaces integrationpb.WorkspacesClient
}

func (ts *testServer) clients(t testing.TB) clients {
	conn := ts.dial(t)
	return clients{integrationpb.NewDiscoveryClient(conn), integrationpb.NewModelsClient(conn), integrationpb.NewWorkspacesClient(conn)}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
