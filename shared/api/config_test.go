package api_test

import (
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/config"
)

func TestLoadConfig(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://u:p@db:5432/bot", "REDIS_ADDR": "redis:6379"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cfg, err := api.LoadConfig(config.MapLookup(with(map[string]string{
		"API_ADMIN_PRINCIPALS":     admin + ", " + bob,
		"API_LOCAL_TOKENS":         aliceToken + "=" + alice + "," + bobToken + "=bob",
		"API_PUBLIC_DATABASE_HOST": "db.example:6543",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.AdminPrincipals) != 2 || cfg.LocalTokens[aliceToken] != alice || cfg.LocalTokens[bobToken] != "bob" ||
		cfg.ListenAddr != api.DefaultListenAddr || cfg.PublicDatabaseHost != "db.example:6543" ||
		cfg.OwnerKey != api.OwnerKeySession {
		t.Errorf("config %+v", cfg)
	}

	// API_OWNER_KEY=role: admins are listed as users or roles, not as role sessions.
	cfg, err = api.LoadConfig(config.MapLookup(with(map[string]string{
		"API_OWNER_KEY":        "role",
		"API_ADMIN_PRINCIPALS": "arn:aws:iam::123456789012:role/PlatformAdmin," + bob,
	})))
	if err != nil || cfg.OwnerKey != api.OwnerKeyRole {
		t.Errorf("API_OWNER_KEY=role: %+v, %v", cfg.OwnerKey, err)
	}
	if cfg, err := api.LoadConfig(config.MapLookup(with(map[string]string{"API_OWNER_KEY": "session"}))); err != nil || cfg.OwnerKey != api.OwnerKeySession {
		t.Errorf("API_OWNER_KEY=session: %+v, %v", cfg.OwnerKey, err)
	}

	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"short token":     {map[string]string{"API_LOCAL_TOKENS": "short=alice"}, "API_LOCAL_TOKENS"},
		"no principal":    {map[string]string{"API_LOCAL_TOKENS": aliceToken + "="}, "API_LOCAL_TOKENS"},
		"no separator":    {map[string]string{"API_LOCAL_TOKENS": aliceToken}, "API_LOCAL_TOKENS"},
		"duplicate token": {map[string]string{"API_LOCAL_TOKENS": aliceToken + "=a," + aliceToken + "=b"}, "API_LOCAL_TOKENS"},
		"bad public host": {map[string]string{"API_PUBLIC_DATABASE_HOST": "db:port"}, "API_PUBLIC_DATABASE_HOST"},
		"bad redis addr":  {map[string]string{"API_PUBLIC_REDIS_ADDR": "redis"}, "API_PUBLIC_REDIS_ADDR"},
		"shared problems": {map[string]string{"REDIS_ADDR": ""}, "REDIS_ADDR"},
		"bad owner key":   {map[string]string{"API_OWNER_KEY": "user"}, `API_OWNER_KEY: "user" is neither "session"`},
		"owner key case":  {map[string]string{"API_OWNER_KEY": "Role"}, "API_OWNER_KEY"},
		// Under role keys a listed session would either never match or, widened, make every
		// session of its role an admin: it is refused, naming the role to list instead.
		"session admin in role mode": {map[string]string{"API_OWNER_KEY": "role", "API_ADMIN_PRINCIPALS": admin},
			"API_ADMIN_PRINCIPALS: \"" + admin + "\" is a role session, but API_OWNER_KEY=role keys callers on their role alone; list the role arn:aws:iam::123456789012:role/PlatformAdmin"},
	} {
		_, err := api.LoadConfig(config.MapLookup(with(c.env)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: LoadConfig error %v, want one naming %s", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), aliceToken) {
			t.Errorf("%s: the error repeats a token: %v", name, err)
		}
	}
}
