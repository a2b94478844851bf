"""Suite-wide settings."""

from hypothesis import settings

# Property tests check behaviour, not speed: on a busy 2-core runner an example can take longer
# than Hypothesis' default 200 ms deadline, which would fail a correct test.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")
