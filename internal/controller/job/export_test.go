package job

import (
	"time"

	"github.com/lotse/lotse/internal/controller"
)

// SetPodBackoff shortens the pod re-creation back-off for the
// integration test (package job_test).
func SetPodBackoff(c controller.Controller, d time.Duration) { c.(*Controller).podBackoff = d }
