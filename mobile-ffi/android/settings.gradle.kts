// The Gradle build of the Android library (AAR) of the Tournée field SDK: the Rust library
// built by cargo-ndk for each ABI, and the Kotlin that uniffi generates for it. See the README,
// "For app developers: the mobile core". Include it in an app's build with
// `includeBuild("path/to/tournee/mobile-ffi/android")`, or publish it (`./gradlew publishToMavenLocal`).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "tournee-field"
