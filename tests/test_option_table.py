"""One option table: the `fakeblock up` options, the site-file keys and the environment agree."""

from __future__ import annotations

from fakeblock.common.config import DetectConfig, DisplayConfig
from fakeblock.common.options import table_of
from fakeblock.common.stages import stage_spec
from fakeblock.control.cli.up_options import STAGE_OPTIONS, UP_OPTIONS, OnOff, config_values
from fakeblock.control.site.schema import environment_name, environment_variables, sections, stage_fields


def test_every_command_line_option_is_a_site_key_with_the_same_limits():
    for name, option in UP_OPTIONS.items():
        section, field_name = STAGE_OPTIONS[name]
        if section == "pipeline":  # worker counts: `workers` of the stage in the file
            spec = next(spec for spec in ("detect", "classify") if stage_spec(spec).workers_field == name)
            assert stage_fields(spec)["workers"].maximum == option.parameter().default.max
            continue
        if section == "supervisor":  # the [supervisor] keys: FAKEBLOCK_SUPERVISOR_METRICS_PORT, ...
            key = sections()[("supervisor",)][field_name]
            assert environment_name(("supervisor",), field_name) in environment_variables()
            assert (key.minimum, key.maximum) == (option.option.minimum, option.option.maximum), name
            continue
        key = stage_fields(section)[field_name]
        assert (key.minimum, key.maximum, key.choices) == (option.option.minimum, option.option.maximum,
                                                           option.option.choices), name
        assert environment_name(("stages", section), field_name) in environment_variables()


def test_derived_fields_are_neither_options_nor_site_keys():
    derived = [field.name for field, described in table_of(DetectConfig) if described.derived]
    assert derived == ["worker_count", "first_worker", "follow_epochs"]
    assert not set(derived) & set(stage_fields("detect")) and not set(derived) & set(UP_OPTIONS)
    assert "expected_streams" not in stage_fields("display") and "live" not in stage_fields("display")


def test_command_line_defaults_and_words_become_config_values():
    assert UP_OPTIONS["outputs"].parameter().default.default == "window"
    assert DisplayConfig().outputs == ("none",)  # a site file without outputs shows nothing
    assert UP_OPTIONS["source"].parameter().default.default is None  # camera 0, else the demo
    assert config_values({"tracking": OnOff.off, "outputs": "web, none", "scale_factor": 1.2}) == \
        {"tracking": False, "outputs": ("web", "none"), "scale_factor": 1.2}
    assert UP_OPTIONS["min_size_px"].parameter().default.param_decls == ("--min-size",)
