package scheduler

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInfoHasMarathonFields checks /v2/info against the members (and
// JSON types) of Marathon's info example.
func TestInfoHasMarathonFields(t *testing.T) {
	s := newTestScheduler(t)
	v, err := s.Info(context.Background())
	require.NoError(t, err)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var info map[string]any
	require.NoError(t, json.Unmarshal(b, &info))
	const (
		str, num, boolean, list = "string", "number", "bool", "list"
	)
	kind := func(v any) string {
		switch v.(type) {
		case string:
			return str
		case float64:
			return num
		case bool:
			return boolean
		case []any:
			return list
		}
		return "other"
	}
	want := map[string]map[string]string{
		"": {"name": str, "version": str, "buildref": str, "elected": boolean, "leader": str, "frameworkId": str},
		"marathon_config": {
			"access_control_allow_origin": list, "checkpoint": boolean, "decline_offer_duration": num,
			"default_network_name": str, "env_vars_prefix": str, "executor": str, "failover_timeout": num,
			"features": list, "framework_name": str, "ha": boolean, "hostname": str, "launch_token": num,
			"launch_token_refresh_interval": num, "leader_proxy_connection_timeout_ms": num,
			"leader_proxy_read_timeout_ms": num, "local_port_max": num, "local_port_min": num, "master": str,
			"max_instances_per_offer": num, "mesos_bridge_name": str, "mesos_heartbeat_failure_threshold": num,
			"mesos_heartbeat_interval": num, "mesos_leader_ui_url": str, "mesos_role": str, "mesos_user": str,
			"min_revive_offers_interval": num, "offer_matching_timeout": num, "on_elected_prepare_timeout": num,
			"reconciliation_initial_delay": num, "reconciliation_interval": num, "scale_apps_initial_delay": num,
			"scale_apps_interval": num, "store_cache": boolean, "task_launch_confirm_timeout": num,
			"task_launch_timeout": num, "task_lost_expunge_initial_delay": num, "task_lost_expunge_interval": num,
			"task_reservation_timeout": num, "webui_url": str,
		},
		"zookeeper_config": {
			"zk": str, "zk_compression": boolean, "zk_compression_threshold": num, "zk_connection_timeout": num,
			"zk_max_node_size": num, "zk_max_versions": num, "zk_session_timeout": num, "zk_timeout": num,
		},
		"http_config": {"http_port": num, "https_port": num},
	}
	for section, fields := range want {
		obj := info
		if section != "" {
			require.IsType(t, map[string]any{}, info[section], section)
			obj = info[section].(map[string]any)
		}
		for k, typ := range fields {
			if assert.Contains(t, obj, k, "%s.%s", section, k) {
				assert.Equal(t, typ, kind(obj[k]), "%s.%s", section, k)
			}
		}
	}
	mc := info["marathon_config"].(map[string]any)
	assert.Contains(t, mc["features"], "secrets", "env secrets are supported")
	assert.Equal(t, "*", mc["mesos_role"])
}
