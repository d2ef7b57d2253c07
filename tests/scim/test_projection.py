"""Projection.wants: which top-level attributes a listing must compute before projecting."""

from scim_bridge.scim.projection import Projection
from scim_bridge.scim.schemas import USER


def test_an_excluded_attribute_is_not_wanted_so_groups_are_not_looked_up():
    assert not Projection(USER, None, "groups").wants("groups")


def test_excluding_only_a_sub_attribute_still_wants_the_attribute():
    assert Projection(USER, None, "groups.display").wants("groups")


def test_excluding_something_else_still_wants_the_attribute():
    assert Projection(USER, None, "emails").wants("groups")


def test_attributes_want_only_what_they_name():
    assert Projection(USER, "userName,groups.value", None).wants("groups")
    assert not Projection(USER, "userName", None).wants("groups")
