"""The process that hosts the bot: settings, channels, web dashboard, scheduler and the CLI."""
