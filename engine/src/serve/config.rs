//! The engine's settings (`keelson serve --config FILE`): what to watch and where to listen.
