package apiwire

import "time"

// Check is one health check with its latency. Status is "ok", "warn" or "fail".
type Check struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Detail    string  `json:"detail"`
}

// SandboxHealth is the answer of GET /v1/sandboxes/{name}/health. Overall is "healthy",
// "degraded" or "unhealthy".
type SandboxHealth struct {
	SandboxID string    `json:"sandbox_id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Overall   string    `json:"overall"`
	CheckedAt time.Time `json:"checked_at"`
	Checks    []Check   `json:"checks"`
}

// ServiceHealth is the answer of GET /health: the same checks, of the service's stores.
type ServiceHealth struct {
	Overall   string    `json:"overall"`
	CheckedAt time.Time `json:"checked_at"`
	Checks    []Check   `json:"checks"`
}
