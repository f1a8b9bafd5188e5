"""Device identifier rules of zero-touch and the reseller library (docs/zerotouch.md, docs/reseller.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisiond.domain.device_identifiers import (
    DEFAULT_MANUFACTURER_RULES,
    MAX_SERIAL_LENGTH,
    DeviceIdentifier,
    InvalidDeviceIdentifier,
    InvalidIdentifierSet,
    InvalidImei,
    InvalidManufacturer,
    InvalidMeid,
    InvalidModel,
    InvalidSerial,
    ManufacturerRules,
    Vendor,
    imei_check_digit,
    is_valid_imei,
    is_valid_meid,
    lookup_keys,
    meid_check_digit,
    normalise_meid,
    validate,
)
from provisiond.errors import InvalidInput

DOCS_IMEI = "123456789012347"
STDNUM_MEID = "AF0123450ABCDE"  # python-stdnum's doctest: check digit C
DIGITS14 = st.text(alphabet="0123456789", min_size=14, max_size=14)
# The docs IMEI in FULLWIDTH digits, which str.isdigit and the regex \d would both accept.
FULLWIDTH_IMEI = "".join(chr(0xFF10 + int(digit)) for digit in DOCS_IMEI)
HEX14 = st.text(alphabet="0123456789abcdefABCDEF", min_size=14, max_size=14)

# The manufacturers the default allow-list must cover, spelled in assorted cases.
BRIEF_MANUFACTURERS = [
    *("Google", "Samsung", "Motorola", "Lenovo", "Sony", "LGE", "HUAWEI", "Xiaomi", "OnePlus", "OPPO"),
    *("vivo", "Nokia", "HMD Global", "Zebra Technologies", "Honeywell", "Panasonic", "Sharp", "Kyocera"),
    *("Fujitsu", "ASUS", "TCL", "Alcatel", "BlackBerry", "Essential Products", "realme", "Cat", "Bullitt"),
    *("Crosscall", "Unitech", "Datalogic", "Point Mobile", "Spectralink", "Ascom", "Getac", "Elo"),
]

# The ErrorCode names of the Common Android Reseller Library's objects reference page.
SEED_ERROR_CODES = {
    "INVALID_DEVICE_IMEI",
    "INVALID_DEVICE_MEID",
    "INVALID_DEVICE_SERIAL",
    "INVALID_IDENTIFIER_SET",
    "INVALID_MANUFACTURER",
    "INVALID_MODEL",
}


def google(**fields: str | None) -> DeviceIdentifier:
    return validate(DeviceIdentifier(**fields), Vendor.GOOGLE, DEFAULT_MANUFACTURER_RULES)


# IMEI


@pytest.mark.parametrize("imei", [DOCS_IMEI, "490154203237518", "000000000000000"])
def test_imeis_with_a_correct_luhn_digit_are_valid(imei: str) -> None:
    assert is_valid_imei(imei)


@pytest.mark.parametrize(
    "imei",
    [
        pytest.param("123456789012345", id="wrong-check-digit"),
        pytest.param("12345678901234", id="14-digits"),
        pytest.param("1234567890123470", id="16-digits"),
        pytest.param("12345678901234A", id="letter"),
        pytest.param("1234567890-2347", id="dash"),
        pytest.param(" 123456789012347", id="unstripped"),
        pytest.param("", id="empty"),
        pytest.param(FULLWIDTH_IMEI, id="fullwidth-digits"),
    ],
)
def test_malformed_imeis_are_invalid(imei: str) -> None:
    assert not is_valid_imei(imei)


def test_the_docs_imei_check_digit_is_7() -> None:
    assert imei_check_digit(DOCS_IMEI[:14]) == "7"


@pytest.mark.parametrize("body", ["1234567890123", "123456789012345", "1234567890123A"])
def test_imei_check_digit_needs_exactly_14_decimal_digits(body: str) -> None:
    with pytest.raises(ValueError, match="14 decimal digits"):
        imei_check_digit(body)


@given(DIGITS14)
def test_every_14_digit_prefix_plus_its_check_digit_is_a_valid_imei(prefix: str) -> None:
    assert is_valid_imei(prefix + imei_check_digit(prefix))


@given(DIGITS14, st.integers(0, 14), st.integers(1, 9))
def test_changing_any_single_digit_of_a_valid_imei_makes_it_invalid(
    prefix: str, position: int, shift: int
) -> None:
    imei = prefix + imei_check_digit(prefix)
    changed = str((int(imei[position]) + shift) % 10)
    assert not is_valid_imei(imei[:position] + changed + imei[position + 1 :])


# MEID


def test_hex_meid_check_digit_is_luhn_in_base_16() -> None:
    assert meid_check_digit(STDNUM_MEID) == "C"
    assert is_valid_meid(STDNUM_MEID + "C")


def test_all_decimal_meid_check_digit_is_the_imei_check_digit() -> None:
    assert meid_check_digit(DOCS_IMEI[:14]) == "7"
    assert is_valid_meid(DOCS_IMEI)


def test_meid_without_check_digit_is_valid() -> None:
    assert is_valid_meid(STDNUM_MEID)


def test_meid_is_stripped_and_upper_cased_with_its_check_digit_kept() -> None:
    assert normalise_meid(" af0123450abcdec ") == "AF0123450ABCDEC"


@pytest.mark.parametrize(
    "meid",
    [
        pytest.param(STDNUM_MEID + "D", id="wrong-check-digit"),
        pytest.param(STDNUM_MEID[:13], id="13-digits"),
        pytest.param(STDNUM_MEID + "C0", id="16-digits"),
        pytest.param("AG0123450ABCDE", id="non-hex"),
        pytest.param("AF 01 23 45 0A BC DE", id="spaced"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_meids_are_rejected_as_invalid_device_meid(meid: str) -> None:
    assert not is_valid_meid(meid)
    with pytest.raises(InvalidMeid):
        normalise_meid(meid)


@given(HEX14, st.booleans())
def test_meid_normalisation_is_idempotent(body: str, with_check_digit: bool) -> None:
    meid = body + meid_check_digit(body).lower() if with_check_digit else body
    once = normalise_meid(meid)
    assert normalise_meid(once) == once
    assert once == once.upper()


@given(HEX14, st.sampled_from("0123456789ABCDEF"))
def test_only_the_computed_check_digit_makes_a_15_digit_meid_valid(body: str, digit: str) -> None:
    assert is_valid_meid(body + digit) == (digit == meid_check_digit(body))


# validate: what a valid identifier becomes


def test_validate_strips_imei_and_keeps_manufacturer_and_serial_as_given() -> None:
    identifier = google(imei=f" {DOCS_IMEI}\n", manufacturer="SAMSUNG", serial_number="ABcd1235678")
    assert identifier == DeviceIdentifier(imei=DOCS_IMEI, manufacturer="SAMSUNG", serial_number="ABcd1235678")


def test_validate_upper_cases_the_meid() -> None:
    assert google(meid="af0123450abcde", manufacturer="motorola").meid == STDNUM_MEID


def test_wifi_only_device_is_named_by_serial_manufacturer_and_model() -> None:
    identifier = google(serial_number="ABcd1235678", manufacturer="Honeywell", model="VM1A")
    assert identifier.serial_number == "ABcd1235678"


@pytest.mark.parametrize("manufacturer", ["Google", "google", "GOOGLE", "gOoGlE"])
def test_manufacturer_allow_list_ignores_case(manufacturer: str) -> None:
    assert google(imei=DOCS_IMEI, manufacturer=manufacturer).manufacturer == manufacturer


def test_meid_plus_manufacturer_is_a_cellular_identifier_set() -> None:
    google(meid=STDNUM_MEID, manufacturer="motorola")


@pytest.mark.parametrize(
    "fields",
    [{"imei": DOCS_IMEI}, {"meid": STDNUM_MEID}, {"serial_number": "R58M123ABC"}],
)
def test_samsung_needs_only_one_hardware_id_and_ignores_the_rest(fields: dict[str, str]) -> None:
    rules = ManufacturerRules(["samsung"], {"samsung": ["SM-G991B"]})
    identifier = DeviceIdentifier(manufacturer="Acme", model="nope", **fields)
    assert validate(identifier, Vendor.SAMSUNG, rules) == identifier


# validate: one error class per ErrorCode


@pytest.mark.parametrize(
    "error",
    [InvalidImei, InvalidMeid, InvalidSerial, InvalidIdentifierSet, InvalidManufacturer, InvalidModel],
)
def test_each_identifier_error_is_invalid_input_carrying_a_seed_error_code(
    error: type[InvalidDeviceIdentifier],
) -> None:
    assert issubclass(error, InvalidInput)
    assert error("x").code in SEED_ERROR_CODES


@pytest.mark.parametrize("vendor", list(Vendor))
def test_bad_imei_is_invalid_device_imei(vendor: Vendor) -> None:
    with pytest.raises(InvalidImei) as raised:
        validate(DeviceIdentifier(imei="123456789012345", manufacturer="Google"), vendor)
    assert raised.value.code == "INVALID_DEVICE_IMEI"


@pytest.mark.parametrize("vendor", list(Vendor))
def test_bad_meid_is_invalid_device_meid(vendor: Vendor) -> None:
    with pytest.raises(InvalidMeid) as raised:
        validate(DeviceIdentifier(meid=STDNUM_MEID + "0", manufacturer="Google"), vendor)
    assert raised.value.code == "INVALID_DEVICE_MEID"


@pytest.mark.parametrize(
    "serial",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="whitespace-only"),
        pytest.param("x" * (MAX_SERIAL_LENGTH + 1), id="too-long"),
        pytest.param("AB\x00CD", id="nul"),
        pytest.param("AB\nCD", id="newline"),
        pytest.param("AB\x7fCD", id="delete"),
        pytest.param(" ABCD", id="leading-space"),
        pytest.param("ABCD\t", id="trailing-tab"),
    ],
)
def test_bad_serial_is_invalid_device_serial(serial: str) -> None:
    with pytest.raises(InvalidSerial) as raised:
        google(serial_number=serial, manufacturer="Honeywell", model="VM1A")
    assert raised.value.code == "INVALID_DEVICE_SERIAL"


def test_serial_of_max_length_with_inner_space_is_accepted() -> None:
    serial = "A B" + "x" * (MAX_SERIAL_LENGTH - 3)
    assert (
        google(serial_number=serial, manufacturer="Zebra Technologies", model="TC52").serial_number == serial
    )


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"imei": DOCS_IMEI}, id="imei-without-manufacturer"),
        pytest.param({"meid": STDNUM_MEID}, id="meid-without-manufacturer"),
        pytest.param({"imei": DOCS_IMEI, "manufacturer": "  "}, id="blank-manufacturer"),
        pytest.param({"manufacturer": "Google", "model": "Pixel 8"}, id="no-hardware-id"),
        pytest.param({"serial_number": "S1", "manufacturer": "Google"}, id="serial-without-model"),
        pytest.param({"serial_number": "S1", "manufacturer": "Google", "model": ""}, id="serial-blank-model"),
        pytest.param({"serial_number": "S1", "model": "Pixel 8"}, id="serial-without-manufacturer"),
    ],
)
def test_google_device_without_a_full_identifier_set_is_invalid_identifier_set(
    fields: dict[str, str],
) -> None:
    with pytest.raises(InvalidIdentifierSet) as raised:
        google(**fields)
    assert raised.value.code == "INVALID_IDENTIFIER_SET"


def test_samsung_device_without_a_hardware_id_is_invalid_identifier_set() -> None:
    with pytest.raises(InvalidIdentifierSet):
        validate(DeviceIdentifier(manufacturer="samsung", model="SM-G991B"), Vendor.SAMSUNG)


def test_manufacturer_off_the_allow_list_is_invalid_manufacturer() -> None:
    with pytest.raises(InvalidManufacturer) as raised:
        google(imei=DOCS_IMEI, manufacturer="Acme Phones")
    assert raised.value.code == "INVALID_MANUFACTURER"


def test_allow_list_is_configurable() -> None:
    rules = ManufacturerRules(["Acme Phones"])
    validate(DeviceIdentifier(imei=DOCS_IMEI, manufacturer="ACME PHONES"), Vendor.GOOGLE, rules)
    with pytest.raises(InvalidManufacturer):
        validate(DeviceIdentifier(imei=DOCS_IMEI, manufacturer="Google"), Vendor.GOOGLE, rules)


def test_model_off_a_configured_list_is_invalid_model() -> None:
    rules = ManufacturerRules(["Honeywell"], {"HONEYWELL": ["VM1A"]})
    identifier = DeviceIdentifier(serial_number="S1", manufacturer="honeywell", model="CT60")
    with pytest.raises(InvalidModel) as raised:
        validate(identifier, Vendor.GOOGLE, rules)
    assert raised.value.code == "INVALID_MODEL"


def test_model_list_also_applies_to_cellular_devices_that_give_a_model() -> None:
    rules = ManufacturerRules(["Honeywell"], {"Honeywell": ["VM1A"]})
    with pytest.raises(InvalidModel):
        validate(
            DeviceIdentifier(imei=DOCS_IMEI, manufacturer="Honeywell", model="CT60"), Vendor.GOOGLE, rules
        )


def test_model_list_is_compared_case_folded() -> None:
    rules = ManufacturerRules(["Honeywell"], {"Honeywell": ["VM1A"]})
    validate(
        DeviceIdentifier(serial_number="S1", manufacturer="honeywell", model="vm1a"), Vendor.GOOGLE, rules
    )


def test_any_model_passes_when_no_list_is_configured_for_its_manufacturer() -> None:
    rules = ManufacturerRules(["Honeywell", "Google"], {"Honeywell": ["VM1A"]})
    validate(
        DeviceIdentifier(serial_number="S1", manufacturer="Google", model="anything"), Vendor.GOOGLE, rules
    )


def test_model_list_for_a_manufacturer_not_allowed_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="acme"):
        ManufacturerRules(["Google"], {"Acme": ["X1"]})


@pytest.mark.parametrize("manufacturer", BRIEF_MANUFACTURERS)
def test_default_rules_allow_well_known_android_manufacturers_with_any_model(manufacturer: str) -> None:
    assert DEFAULT_MANUFACTURER_RULES.allows_manufacturer(manufacturer)
    assert DEFAULT_MANUFACTURER_RULES.allows_model(manufacturer, "any model at all")


def test_hardware_ids_are_checked_before_the_identifier_set() -> None:
    with pytest.raises(InvalidImei):
        google(imei="12345")


# lookup_keys


def test_keys_cover_every_complete_identifier_set_with_manufacturer_and_model_case_folded() -> None:
    identifier = DeviceIdentifier(
        imei=DOCS_IMEI, meid=STDNUM_MEID, serial_number="ABcd1235678", manufacturer="HoneyWell", model="VM1A"
    )
    assert lookup_keys(identifier) == [
        ("imei", "honeywell", DOCS_IMEI),
        ("meid", "honeywell", STDNUM_MEID),
        ("serial", "honeywell", "vm1a", "ABcd1235678"),
    ]


def test_serial_keys_are_case_sensitive() -> None:
    upper = DeviceIdentifier(serial_number="ABCD1234", manufacturer="Google", model="Pixel Tablet")
    lower = DeviceIdentifier(serial_number="abcd1234", manufacturer="Google", model="Pixel Tablet")
    assert lookup_keys(upper) != lookup_keys(lower)


def test_manufacturer_case_does_not_change_the_keys() -> None:
    keys = {
        tuple(lookup_keys(DeviceIdentifier(imei=DOCS_IMEI, manufacturer=m))) for m in ("LGE", "lge", "Lge")
    }
    assert len(keys) == 1


def test_meid_key_ignores_the_optional_check_digit() -> None:
    with_digit = DeviceIdentifier(meid=STDNUM_MEID + "C", manufacturer="motorola")
    without = DeviceIdentifier(meid=STDNUM_MEID, manufacturer="motorola")
    assert lookup_keys(with_digit) == lookup_keys(without) == [("meid", "motorola", STDNUM_MEID)]


def test_google_identifier_missing_a_set_part_yields_no_key_for_that_set() -> None:
    assert lookup_keys(DeviceIdentifier(imei=DOCS_IMEI)) == []
    assert lookup_keys(DeviceIdentifier(serial_number="S1", manufacturer="Google")) == []


def test_samsung_keys_use_samsung_as_manufacturer_and_ignore_the_model() -> None:
    identifier = DeviceIdentifier(imei=DOCS_IMEI, serial_number="R58M", manufacturer="Acme", model="X")
    assert lookup_keys(identifier, Vendor.SAMSUNG) == [
        ("imei", "samsung", DOCS_IMEI),
        ("serial", "samsung", "", "R58M"),
    ]


def test_samsung_imei_key_matches_a_google_claim_with_manufacturer_samsung() -> None:
    via_samsung = lookup_keys(DeviceIdentifier(imei=DOCS_IMEI), Vendor.SAMSUNG)
    via_google = lookup_keys(DeviceIdentifier(imei=DOCS_IMEI, manufacturer="Samsung"), Vendor.GOOGLE)
    assert via_samsung == via_google
