# Shared by the reference scripts: the R and package versions a reference was made with.
# Each script stores r_versions(<packages it uses>) in its JSON output under "r_versions";
# r_compat/VERSIONS.md lists the versions of the references stored in the repository.
r_versions <- function(packages) {
  list(R = R.version.string,
       packages = setNames(lapply(packages, function(p) as.character(packageVersion(p))), packages))
}
