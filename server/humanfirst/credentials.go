package humanfirst

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// Credentials are the contents of the mtls-credentials.json file that HumanFirst's `hf` CLI
// writes for a custom integration (`hf integrations create custom … --key-out …`).
type Credentials struct {
	// KeyPair is the server's certificate (chain) and key: local_keypair.
	KeyPair tls.Certificate
	// ClientCAs holds remote_certificate, the only trust anchor for client certificates.
	ClientCAs *x509.CertPool
	// Remote lists the parsed remote_certificate blocks (for logs and expiry checks).
	Remote []*x509.Certificate
}

// credentialsFile is the JSON layout. Unknown keys are ignored: the CLI may write more.
type credentialsFile struct {
	LocalKeypair *struct {
		Certificate string `json:"certificate"`
		PrivateKey  string `json:"private_key"`
	} `json:"local_keypair"`
	RemoteCertificate string `json:"remote_certificate"`
}

// LoadCredentials reads and checks an mtls-credentials.json file.
func LoadCredentials(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("humanfirst credentials: %w", err)
	}
	c, err := ParseCredentials(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseCredentials parses mtls-credentials.json contents. Each of the three PEM fields must be
// present and parse, and the key must match the certificate; anything else fails at start-up
// rather than at the first handshake.
func ParseCredentials(data []byte) (*Credentials, error) {
	var f credentialsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("humanfirst credentials: not a credentials JSON object: %w", err)
	}
	switch {
	case f.LocalKeypair == nil:
		return nil, errors.New("humanfirst credentials: missing local_keypair")
	case f.LocalKeypair.Certificate == "":
		return nil, errors.New("humanfirst credentials: missing local_keypair.certificate")
	case f.LocalKeypair.PrivateKey == "":
		return nil, errors.New("humanfirst credentials: missing local_keypair.private_key")
	case f.RemoteCertificate == "":
		return nil, errors.New("humanfirst credentials: missing remote_certificate")
	}
	pair, err := tls.X509KeyPair([]byte(f.LocalKeypair.Certificate), []byte(f.LocalKeypair.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("humanfirst credentials: local_keypair: %w", err)
	}
	c := &Credentials{KeyPair: pair, ClientCAs: x509.NewCertPool()}
	rest := []byte(f.RemoteCertificate)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("humanfirst credentials: remote_certificate: %w", err)
		}
		c.ClientCAs.AddCert(cert)
		c.Remote = append(c.Remote, cert)
	}
	if len(c.Remote) == 0 {
		return nil, errors.New("humanfirst credentials: remote_certificate holds no PEM certificate")
	}
	return c, nil
}

// TLSConfig returns the server's TLS configuration: TLS 1.2 or later, the local key pair, and
// client certificates required and verified against remote_certificate only (never the system
// roots). Go also requires the client certificate to allow client authentication in its
// extended key usage (or to have none).
func (c *Credentials) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c.KeyPair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.ClientCAs,
	}
}

// expiryWarnings describes certificates that are expired or not yet valid at now.
func (c *Credentials) expiryWarnings(now time.Time) []string {
	var out []string
	check := func(what string, cert *x509.Certificate) {
		if now.After(cert.NotAfter) {
			out = append(out, fmt.Sprintf("%s %q expired on %s", what, cert.Subject.CommonName, cert.NotAfter.Format(time.DateOnly)))
		} else if now.Before(cert.NotBefore) {
			out = append(out, fmt.Sprintf("%s %q is not valid before %s", what, cert.Subject.CommonName, cert.NotBefore.Format(time.RFC3339)))
		}
	}
	if leaf := c.KeyPair.Leaf; leaf != nil {
		check("local_keypair certificate", leaf)
	}
	for _, r := range c.Remote {
		check("remote_certificate", r)
	}
	return out
}
