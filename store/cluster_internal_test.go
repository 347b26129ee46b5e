package store

import (
	"fmt"
	"testing"
)

func TestCoordinators(t *testing.T) {
	servers := []clusterServer{
		{shard: 1, replica: 1, host: "ch-1-1", address: "10.0.0.11", port: 9000},
		{shard: 1, replica: 2, host: "ch-1-2", address: "10.0.0.12", port: 9000},
		{shard: 2, replica: 1, host: "ch-2-1", address: "10.0.0.21", port: 9000},
		{shard: 2, replica: 2, host: "ch-2-2", address: "10.0.0.22", port: 9000},
	}
	given := []string{"lb:9000", "ch-2-2:9000", "ch-1-2:9000", "10.0.0.21:9000", "ch-1-1:9000"}
	for pick, want := range map[int]string{
		0: "[ch-1-1:9000 10.0.0.21:9000 ch-1-2:9000 ch-2-2:9000 lb:9000]",
		1: "[10.0.0.21:9000 ch-1-1:9000 ch-2-2:9000 ch-1-2:9000 lb:9000]",
	} {
		got := coordinators(given, servers, func(int) int { return pick })
		if fmt.Sprint(got) != want {
			t.Errorf("pick %d: %v, want %s", pick, got, want)
		}
	}
	if got := coordinators([]string{"x:1", "y:2"}, servers, func(int) int { return 0 }); fmt.Sprint(got) != "[x:1 y:2]" {
		t.Errorf("addresses the cluster does not list were reordered: %v", got)
	}
}
