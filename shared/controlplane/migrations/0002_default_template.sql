-- The default template schema (SANDBOX_TEMPLATE_SCHEMA=sandbox_template): what a Discord bot
-- keeps per guild. Every table is cloned into each sandbox schema with
-- CREATE TABLE ... (LIKE ... INCLUDING ALL), foreign keys between template tables included.
-- Use identity columns, not serial: identity sequences are cloned per sandbox.
CREATE SCHEMA IF NOT EXISTS sandbox_template;
REVOKE ALL ON SCHEMA sandbox_template FROM PUBLIC;

CREATE TABLE sandbox_template.guild_settings (
    guild_id   text        PRIMARY KEY CHECK (guild_id ~ '^[1-9][0-9]{16,19}$'),
    prefix     text        NOT NULL DEFAULT '!' CHECK (length(prefix) BETWEEN 1 AND 8),
    locale     text        NOT NULL DEFAULT 'en-US',
    settings   jsonb       NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sandbox_template.members (
    guild_id  text        NOT NULL,
    user_id   text        NOT NULL,
    xp        bigint      NOT NULL DEFAULT 0 CHECK (xp >= 0),
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id)
);
CREATE INDEX members_leaderboard ON sandbox_template.members (guild_id, xp DESC);

CREATE TABLE sandbox_template.moderation_cases (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id     text        NOT NULL REFERENCES sandbox_template.guild_settings (guild_id) ON DELETE CASCADE,
    user_id      text        NOT NULL,
    moderator_id text        NOT NULL,
    action       text        NOT NULL CHECK (action IN ('warn', 'mute', 'kick', 'ban')),
    reason       text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX moderation_cases_user ON sandbox_template.moderation_cases (guild_id, user_id);

CREATE TABLE sandbox_template.reminders (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id   text        NOT NULL,
    channel_id text        NOT NULL,
    user_id    text        NOT NULL,
    remind_at  timestamptz NOT NULL,
    content    text        NOT NULL CHECK (length(content) <= 2000)
);
CREATE INDEX reminders_due ON sandbox_template.reminders (remind_at);
