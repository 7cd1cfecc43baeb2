"""The driver base: a driver's ``Options`` must build the options type it declares."""

from typing import get_args

import pytest
from pydantic import BaseModel

from edge.config import SensorConfig
from edge.drivers.base import NoOptions, PolledDriver, Sample, create_driver
from edge.drivers.simulated import SimulatedOptions
from fabcity import plugins


def declared_options(cls: type) -> object:
    """The options type a driver class names as its type parameter, nearest first."""
    for klass in cls.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            args = get_args(base)
            if args and isinstance(args[0], type):
                return args[0]
    return None


def test_options_model_that_does_not_build_the_declared_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Mismatched.Options is NoOptions, not a SimulatedOptions"):

        class Mismatched(PolledDriver[SimulatedOptions]):
            Options = NoOptions

            def read(self) -> list[Sample]:
                return []


def test_options_model_of_a_subtype_of_the_declared_type_is_accepted() -> None:
    class Narrower(SimulatedOptions):
        pass

    class Accepted(PolledDriver[SimulatedOptions]):
        Options = Narrower

        def read(self) -> list[Sample]:
            return []

    assert Accepted.Options is Narrower


@pytest.mark.parametrize("name", plugins.available("fabcity.drivers"))
def test_every_registered_driver_declares_its_own_options_type(name: str) -> None:
    cls = plugins.load("fabcity.drivers", name)
    declared = declared_options(cls)
    assert isinstance(declared, type) and declared is not BaseModel
    assert issubclass(cls.Options, declared)


def test_created_driver_holds_the_validated_options_under_one_name() -> None:
    driver = create_driver(
        SensorConfig(driver="simulated", name="seq", profile="sequence", seed=4)
    )
    assert isinstance(driver.options, SimulatedOptions)
    assert (driver.options.profile, driver.options.seed) == ("sequence", 4)
