// Package humanfirst serves HumanFirst's custom-integration gRPC services.
package humanfirst
