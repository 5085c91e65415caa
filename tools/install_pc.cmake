# SPDX-License-Identifier: MIT
# Runs at install time (install(SCRIPT) in the top CMakeLists.txt): writes
# veloz.pc for the prefix actually installed to, which `cmake --install
# --prefix` may change after configuration. For a lib dir the dynamic loader
# does not search by default ($HOME/.local/lib, /opt/veloz/lib, and
# /usr/local/lib until ldconfig has run), Libs also carries
# -Wl,-rpath,${libdir}: a program linked with `pkg-config --libs veloz` then
# finds libveloz.so.0 at run time without LD_LIBRARY_PATH. Under /usr (or /)
# it does not, as distributions want. The file's prefix is found from its
# own location (${pcfiledir}), as many levels up as the lib dir is deep.
#
# Inputs, set by install(CODE) just before: VZ_PC_TEMPLATE (the configured
# veloz.pc with its %VZ_PC_RPATH% and %VZ_PC_UP% placeholders), VZ_PC_LIBDIR
# (CMAKE_INSTALL_LIBDIR), VZ_PC_SYSTEM_DIRS (the loader's default dirs).

set(libdir "${CMAKE_INSTALL_PREFIX}/${VZ_PC_LIBDIR}")
if(IS_ABSOLUTE "${VZ_PC_LIBDIR}")
	set(libdir "${VZ_PC_LIBDIR}")
endif()
cmake_path(NORMAL_PATH libdir)
string(REGEX REPLACE "/+$" "" libdir "${libdir}")
set(system FALSE)
foreach(dir ${VZ_PC_SYSTEM_DIRS})
	cmake_path(NORMAL_PATH dir)
	string(REGEX REPLACE "/+$" "" dir "${dir}")
	if(libdir STREQUAL dir)
		set(system TRUE)
	endif()
endforeach()
if(system)
	set(VZ_PC_RPATH "")
else()
	set(VZ_PC_RPATH " -Wl,-rpath,\${libdir}")
endif()
# ${pcfiledir} -> the prefix, so the file stays right if the tree moves.
file(RELATIVE_PATH up "${libdir}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" up "${up}")
file(READ "${VZ_PC_TEMPLATE}" pc)
string(REPLACE "%VZ_PC_RPATH%" "${VZ_PC_RPATH}" pc "${pc}")
string(REPLACE "%VZ_PC_UP%" "${up}" pc "${pc}")
get_filename_component(tmpdir "${VZ_PC_TEMPLATE}" DIRECTORY)
file(WRITE "${tmpdir}/install/veloz.pc" "${pc}")
# file(INSTALL) honours DESTDIR and records the file in install_manifest.txt.
file(INSTALL DESTINATION "${libdir}/pkgconfig" TYPE FILE FILES "${tmpdir}/install/veloz.pc")
