package gateway

// guildPath is the chain of keys inside d that leads to an event's guild id; nil means the
// event never belongs to a guild.
type guildPath []string

var (
	defaultGuildPath = guildPath{"guild_id"}
	atGuildObjectID  = guildPath{"id"} // d is the guild itself
	atRateLimitMeta  = guildPath{"meta", "guild_id"}
)

// guildLocations lists every dispatch event in Discord's gateway event documentation
// (developers/events/gateway-events, "Receive Events") and where its guild id lives.
// Event types missing from the table use defaultGuildPath, which is where Discord puts it
// for nearly every guild event, so new event types route correctly by default.
// An optional guild_id (direct messages, ephemeral messages, user-level entitlements,
// interactions in DMs) simply yields no guild.
var guildLocations = map[string]guildPath{
	// Session events: about the connection, never about one guild.
	"READY":        nil, // d.guilds lists every guild of the bot
	"RESUMED":      nil,
	"RATE_LIMITED": atRateLimitMeta, // meta of a rate-limited Request Guild Members

	"APPLICATION_COMMAND_PERMISSIONS_UPDATE": defaultGuildPath,

	"AUTO_MODERATION_RULE_CREATE":      defaultGuildPath,
	"AUTO_MODERATION_RULE_UPDATE":      defaultGuildPath,
	"AUTO_MODERATION_RULE_DELETE":      defaultGuildPath,
	"AUTO_MODERATION_ACTION_EXECUTION": defaultGuildPath,

	"CHANNEL_CREATE":      defaultGuildPath,
	"CHANNEL_UPDATE":      defaultGuildPath,
	"CHANNEL_DELETE":      defaultGuildPath,
	"CHANNEL_PINS_UPDATE": defaultGuildPath, // no guild_id in a DM

	"THREAD_CREATE":         defaultGuildPath,
	"THREAD_UPDATE":         defaultGuildPath,
	"THREAD_DELETE":         defaultGuildPath,
	"THREAD_LIST_SYNC":      defaultGuildPath,
	"THREAD_MEMBER_UPDATE":  defaultGuildPath,
	"THREAD_MEMBERS_UPDATE": defaultGuildPath,

	"ENTITLEMENT_CREATE": defaultGuildPath, // guild_id only for guild subscriptions
	"ENTITLEMENT_UPDATE": defaultGuildPath,
	"ENTITLEMENT_DELETE": defaultGuildPath,

	"GUILD_CREATE": atGuildObjectID,
	"GUILD_UPDATE": atGuildObjectID,
	"GUILD_DELETE": atGuildObjectID,

	"GUILD_AUDIT_LOG_ENTRY_CREATE":      defaultGuildPath,
	"GUILD_BAN_ADD":                     defaultGuildPath,
	"GUILD_BAN_REMOVE":                  defaultGuildPath,
	"GUILD_EMOJIS_UPDATE":               defaultGuildPath,
	"GUILD_STICKERS_UPDATE":             defaultGuildPath,
	"GUILD_INTEGRATIONS_UPDATE":         defaultGuildPath,
	"GUILD_MEMBER_ADD":                  defaultGuildPath,
	"GUILD_MEMBER_REMOVE":               defaultGuildPath,
	"GUILD_MEMBER_UPDATE":               defaultGuildPath,
	"GUILD_MEMBERS_CHUNK":               defaultGuildPath,
	"GUILD_ROLE_CREATE":                 defaultGuildPath,
	"GUILD_ROLE_UPDATE":                 defaultGuildPath,
	"GUILD_ROLE_DELETE":                 defaultGuildPath,
	"GUILD_SCHEDULED_EVENT_CREATE":      defaultGuildPath,
	"GUILD_SCHEDULED_EVENT_UPDATE":      defaultGuildPath,
	"GUILD_SCHEDULED_EVENT_DELETE":      defaultGuildPath,
	"GUILD_SCHEDULED_EVENT_USER_ADD":    defaultGuildPath,
	"GUILD_SCHEDULED_EVENT_USER_REMOVE": defaultGuildPath,
	"GUILD_SOUNDBOARD_SOUND_CREATE":     defaultGuildPath,
	"GUILD_SOUNDBOARD_SOUND_UPDATE":     defaultGuildPath,
	"GUILD_SOUNDBOARD_SOUND_DELETE":     defaultGuildPath,
	"GUILD_SOUNDBOARD_SOUNDS_UPDATE":    defaultGuildPath,
	"SOUNDBOARD_SOUNDS":                 defaultGuildPath,

	"INTEGRATION_CREATE": defaultGuildPath,
	"INTEGRATION_UPDATE": defaultGuildPath,
	"INTEGRATION_DELETE": defaultGuildPath,

	"INTERACTION_CREATE": defaultGuildPath, // no guild_id in a DM or group DM

	"INVITE_CREATE": defaultGuildPath,
	"INVITE_DELETE": defaultGuildPath,

	"MESSAGE_CREATE":                defaultGuildPath, // no guild_id in DMs and ephemeral messages
	"MESSAGE_UPDATE":                defaultGuildPath,
	"MESSAGE_DELETE":                defaultGuildPath,
	"MESSAGE_DELETE_BULK":           defaultGuildPath,
	"MESSAGE_REACTION_ADD":          defaultGuildPath,
	"MESSAGE_REACTION_REMOVE":       defaultGuildPath,
	"MESSAGE_REACTION_REMOVE_ALL":   defaultGuildPath,
	"MESSAGE_REACTION_REMOVE_EMOJI": defaultGuildPath,
	"MESSAGE_POLL_VOTE_ADD":         defaultGuildPath,
	"MESSAGE_POLL_VOTE_REMOVE":      defaultGuildPath,

	"PRESENCE_UPDATE": defaultGuildPath,

	"STAGE_INSTANCE_CREATE": defaultGuildPath,
	"STAGE_INSTANCE_UPDATE": defaultGuildPath,
	"STAGE_INSTANCE_DELETE": defaultGuildPath,

	// Premium app subscriptions belong to a user, not a guild.
	"SUBSCRIPTION_CREATE": nil,
	"SUBSCRIPTION_UPDATE": nil,
	"SUBSCRIPTION_DELETE": nil,

	"TYPING_START": defaultGuildPath,

	"USER_UPDATE": nil, // the bot's own user

	"VOICE_CHANNEL_EFFECT_SEND": defaultGuildPath,
	"VOICE_STATE_UPDATE":        defaultGuildPath,
	"VOICE_SERVER_UPDATE":       defaultGuildPath,

	"WEBHOOKS_UPDATE": defaultGuildPath,
}

// eventInfo is a table entry with its name kept, so Parse can return the interned name.
type eventInfo struct {
	name    string
	guildAt guildPath
}

var eventsByName = func() map[string]eventInfo {
	m := make(map[string]eventInfo, len(guildLocations))
	for name, path := range guildLocations {
		m[name] = eventInfo{name: name, guildAt: path}
	}
	return m
}()
