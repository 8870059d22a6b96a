package clients

// URLFromSecret is urlFromSecret, for the package's external tests (package clients_test: test
// support, which they use, builds its clients with this package).
var URLFromSecret = urlFromSecret
